//! `latchkey serve` for real: the binary on a loopback socket, with pysaml2 as the SP and a
//! scripted browser (tests/interop/pysaml2_sp.py) signing in through it, SP- and
//! IdP-initiated. The oracle is found through LATCHKEY_PYTHON (scripts/test sets it),
//! falling back to `python3`; if it cannot run, the test FAILS with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_idp::apps::NewApplication;
use latchkey_idp::directory::{NewGroup, NewUser};
use latchkey_idp::password::Password;
use latchkey_idp::{Actor, Config, Store};

const SP_ENTITY: &str = "https://sp.interop.test/metadata";
const SP_ACS: &str = "https://sp.interop.test/acs";
const PASSWORD: &str = "interop password 1";

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A raw HTTP/1.1 GET on the socket: (status line, headers and body).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

struct Seeded {
    app_id: String,
    key: PathBuf,
    cert: PathBuf,
}

async fn seed(config: &Path, dir: &Path) -> Seeded {
    let config = Config::load(Some(config)).unwrap();
    let store = Store::open(&config).await.unwrap();
    let admin = Actor::system();
    let mut alice = NewUser::new("alice", "alice@example.org");
    alice.given_name = Some("Alice".into());
    alice.password = Some(Password::new(PASSWORD));
    let alice = store.users().create(&admin, alice).await.unwrap();
    let staff = store
        .groups()
        .create(&admin, NewGroup::new("staff"))
        .await
        .unwrap();
    store
        .groups()
        .add_member(&admin, staff.id, alice.id)
        .await
        .unwrap();

    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sp.interop.test".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let key_path = dir.join("sp.key");
    let cert_path = dir.join("sp.crt");
    std::fs::write(&key_path, pair.serialize_pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();

    let mut app = NewApplication::new(SP_ENTITY, "Interop SP", SP_ACS);
    app.signing_certs = vec![cert.pem()];
    app.attributes = vec![
        // pysaml2 maps the standard OIDs to friendly names in `ava`.
        "urn:oid:0.9.2342.19200300.100.1.3=email".parse().unwrap(),
        "urn:oid:2.5.4.42=given_name".parse().unwrap(),
    ];
    app.tile.default_relay_state = Some("/home".into());
    let app = store.apps().create(&admin, app).await.unwrap();
    store.apps().assign(&admin, app.id, staff.id).await.unwrap();
    store.close().await;
    Seeded {
        app_id: app.id.to_string(),
        key: key_path,
        cert: cert_path,
    }
}

fn pysaml2(base: &str, seeded: &Seeded, cmd: &str) -> serde_json::Value {
    let python = std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/pysaml2_sp.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(cmd)
        .args(["--base", base, "--sp-entity-id", SP_ENTITY, "--acs", SP_ACS])
        .arg("--key")
        .arg(&seeded.key)
        .arg("--cert")
        .arg(&seeded.cert)
        .args(["--username", "alice", "--password", PASSWORD])
        .args(["--app-id", &seeded.app_id])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test): {e}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pysaml2 SP failed (set LATCHKEY_PYTHON to the oracle venv, see scripts/test):\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A temporary directory with a `latchkey.toml` for a server on a free loopback port, with
/// cheap password hashing; returns the directory, the port, the base URL and the file.
fn cheap_server_config() -> (tempfile::TempDir, u16, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[password]\nmemory_kib = 256\niterations = 1\n\
             [server]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\ncookie_secure = false\n"
        ),
    )
    .unwrap();
    (dir, port, base, config)
}

#[test]
fn pysaml2_sp_signs_in_through_a_running_server() {
    let (dir, port, base, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seeded = runtime.block_on(seed(&config, dir.path()));

    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        if http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("content-security-policy: default-src 'none'"));

    let sp = pysaml2(&base, &seeded, "sp-initiated");
    assert_eq!(sp["in_response_to"], sp["request_id"], "{sp}");
    assert_eq!(sp["issuer"], format!("{base}/saml/metadata"));
    assert_eq!(
        sp["name_id_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
    assert_eq!(sp["relay_state"], "interop-relay");
    assert_eq!(
        sp["ava"]["mail"],
        serde_json::json!(["alice@example.org"]),
        "{sp}"
    );
    assert_eq!(sp["ava"]["givenName"], serde_json::json!(["Alice"]));
    assert!(
        sp["session_index"]
            .as_str()
            .is_some_and(|s| s.starts_with("_s"))
    );

    let post = pysaml2(&base, &seeded, "sp-initiated-post");
    assert_eq!(post["in_response_to"], post["request_id"], "{post}");
    assert_eq!(post["relay_state"], "interop-post");
    assert_eq!(post["name_id"], sp["name_id"]);

    let idp = pysaml2(&base, &seeded, "idp-initiated");
    assert!(idp["in_response_to"].is_null(), "{idp}");
    assert_eq!(idp["relay_state"], "/home");
    // The same pairwise identifier both times.
    assert_eq!(idp["name_id"], sp["name_id"]);

    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "latchkey_assertions_issued_total{{app=\"{SP_ENTITY}\"}} 3"
        )),
        "{metrics}"
    );
}

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
}

#[test]
fn sign_in_survives_stderr_on_a_full_disk() {
    sign_in_survives_a_broken_stderr(BrokenStderr::Full);
}

#[test]
fn sign_in_survives_a_closed_stderr_pipe() {
    sign_in_survives_a_broken_stderr(BrokenStderr::ClosedPipe);
}
