//! `latchkey serve` for real: the binary on a loopback socket signing people in while its
//! stderr is broken. The sign-in by pysaml2 through a running server is in
//! `tests/oracles/serve.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::shared::serve::*;

/// One raw HTTP/1.1 request on the socket: the whole answer (status line, headers, body).
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The text between the first `start` in `text` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

/// Where stderr goes in [`sign_in_survives_a_broken_stderr`].
enum BrokenStderr {
    /// `2>/dev/full`: every write fails with ENOSPC, as with the log on a full disk.
    Full,
    /// A pipe whose reading end is closed: every write fails with EPIPE.
    ClosedPipe,
}

/// With stderr unwritable, `latchkey serve` starts, stays up and signs people in; the lines
/// it could not write are counted in /metrics instead of panicking the request (or the
/// audit writer) that logged them.
fn sign_in_survives_a_broken_stderr(broken: BrokenStderr) {
    let (dir, port, _, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(seed(&config, dir.path()));

    let stderr = match broken {
        BrokenStderr::Full => Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        ),
        BrokenStderr::ClosedPipe => Stdio::piped(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config"])
        .arg(&config)
        // Debug lines too, so that each request has lines to lose.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut server = Server(child);

    let started = Instant::now();
    while !http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "latchkey serve exited before it answered"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for round in 0..3 {
        let form = http(
            port,
            &format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
        );
        assert!(form.starts_with("HTTP/1.1 200"), "{form}");
        let cookie = between(&form, "set-cookie: latchkey_csrf=", ";");
        let field = between(&form, "name=\"csrf\" value=\"", "\"");
        assert_eq!(cookie, field);
        let body = format!(
            "username=alice&password={}&csrf={field}",
            PASSWORD.replace(' ', "+")
        );
        let answer = http(
            port,
            &format!(
                "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
                 Cookie: latchkey_csrf={cookie}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(
            answer.starts_with("HTTP/1.1 303"),
            "round {round}: {answer}"
        );
        assert!(
            answer.contains("location: /portal\r\n"),
            "round {round}: {answer}"
        );
        assert!(answer.contains("set-cookie: latchkey_session="), "{answer}");
    }
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "latchkey serve died"
    );

    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("latchkey_logins_total{result=\"success\"} 3"),
        "{metrics}"
    );
    let dropped: u64 = between(&metrics, "\nlatchkey_log_lines_dropped_total ", "\n")
        .parse()
        .unwrap();
    assert!(dropped > 0, "{metrics}");
    // The server checkpoints SQLite's WAL from its own task (the sign-ins wrote to it).
    let checkpoints: u64 = between(
        &metrics,
        "\nlatchkey_sqlite_checkpoints_total{outcome=\"done\"} ",
        "\n",
    )
    .parse()
    .unwrap();
    assert!(checkpoints > 0, "{metrics}");
    assert!(
        metrics.contains("latchkey_sqlite_checkpoints_total{outcome=\"failed\"} 0\n"),
        "{metrics}"
    );
}

#[test]
fn sign_in_survives_stderr_on_a_full_disk() {
    sign_in_survives_a_broken_stderr(BrokenStderr::Full);
}

#[test]
fn sign_in_survives_a_closed_stderr_pipe() {
    sign_in_survives_a_broken_stderr(BrokenStderr::ClosedPipe);
}

/// Logs written to a file (stderr not a terminal, as under systemd or a log collector)
/// carry no ANSI colour codes: every level and field arrives as plain text.
#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let (dir, port, _, config) = cheap_server_config();
    let log = dir.path().join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "debug")
        .env_remove("LATCHKEY_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let started = Instant::now();
    while !http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "latchkey serve exited before it answered"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http_get(port, "/login").is_some());
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO") && text.contains("DEBUG"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in the log: {text:?}"
    );
}

/// `--json` listings print the same object the admin API answers: an application from
/// `latchkey app show --json` equals `GET /api/v1/apps/{id}` of a running server, but for
/// the CLI's added `access_groups`.
#[test]
fn cli_json_and_the_api_answer_the_same_shape() {
    let (dir, port, _, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seeded = runtime.block_on(seed(&config, dir.path()));
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "latchkey {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created = cli(&["token", "create", "shape-test"]);
    let token = created
        .split_whitespace()
        .find(|w| w.starts_with("lk_"))
        .unwrap_or_else(|| panic!("no token in {created}"))
        .to_owned();
    let mut shown: serde_json::Value =
        serde_json::from_str(&cli(&["app", "show", &seeded.app_id, "--json"])).unwrap();
    assert!(shown["access_groups"].is_array(), "{shown}");
    shown.as_object_mut().unwrap().remove("access_groups");
    let members: serde_json::Value =
        serde_json::from_str(&cli(&["group", "members", "list", "staff", "--json"])).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let started = Instant::now();
    while !http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(server.0.try_wait().unwrap().is_none(), "serve exited");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = http(
        port,
        &format!(
            "GET /api/v1/apps/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n",
            seeded.app_id
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let api: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(shown, api);
    // The CLI streams a group's members as the array of the API's page items.
    let answer = http(
        port,
        &format!(
            "GET /api/v1/groups/staff/members HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let api: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    assert_eq!(members, api["items"]);

    // `latchkey serve` answers SCIM under /scim/v2 to a `--scope scim` token only, which in
    // turn the admin API refuses; `token list --json` shows each token's scope.
    let created: serde_json::Value = serde_json::from_str(&cli(&[
        "token", "create", "hr-feed", "--scope", "scim", "--json",
    ]))
    .unwrap();
    assert_eq!(created["info"]["scope"], "scim", "{created}");
    let scim_token = created["token"].as_str().unwrap().to_owned();
    let listed: serde_json::Value =
        serde_json::from_str(&cli(&["token", "list", "--json"])).unwrap();
    let scopes: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["api", "scim"], "{listed}");
    let get = |path: &str, token: &str| {
        http(
            port,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
    };
    let answer = get("/scim/v2/Users?filter=userName%20sw%20%22a%22", &scim_token);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("application/scim+json"), "{answer}");
    assert!(get("/scim/v2/Users", &token).starts_with("HTTP/1.1 401"));
    assert!(get("/api/v1/users", &scim_token).starts_with("HTTP/1.1 401"));
}
