//! The IdP's SCIM client against scim2-server (PyPI, pinned in tests/interop/requirements.txt),
//! an in-memory SCIM 2.0 server nobody here wrote, started on loopback with a bearer token.
//! `latchkey serve` delivers its outbox there; each step is checked by reading scim2-server's
//! `/Users`. The second test kills the IdP with SIGKILL while the server is unreachable and
//! shows the change arrive after both are started again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::shared::serve::*;

const TOKEN: &str = "scim-oracle-token-1";

/// scim2-server on `port`, killed when dropped.
struct ScimServer(Child);

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_scim2(dir: &Path, port: u16) -> ScimServer {
    let python = latchkey_testkit::oracle::python(&["scim2_server"]);
    let log = std::fs::File::create(dir.join(format!("scim2-{port}.log"))).unwrap();
    let child = Command::new(&python)
        .args([
            "-c",
            "import sys; from scim2_server.testserver.cli import main; sys.exit(main())",
        ])
        .args(["--port", &port.to_string(), "--bearer-token", TOKEN])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let server = ScimServer(child);
    let started = Instant::now();
    while users(port).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "scim2-server did not come up: {}",
            std::fs::read_to_string(dir.join(format!("scim2-{port}.log"))).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// scim2-server's users, by userName (None: not answering).
fn users(port: u16) -> Option<Vec<Value>> {
    let answer = std::process::Command::new("curl")
        .args(["-s", "-f", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(format!("http://127.0.0.1:{port}/Users?count=500"))
        .output()
        .ok()?;
    if !answer.status.success() {
        return None;
    }
    let body: Value = serde_json::from_slice(&answer.stdout).ok()?;
    Some(body["Resources"].as_array().cloned().unwrap_or_default())
}

/// scim2-server's group with this displayName.
fn group(port: u16, name: &str) -> Option<Value> {
    let answer = Command::new("curl")
        .args(["-s", "-f", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(format!("http://127.0.0.1:{port}/Groups?count=500"))
        .output()
        .ok()?;
    let body: Value = serde_json::from_slice(&answer.stdout).ok()?;
    body["Resources"]
        .as_array()?
        .iter()
        .find(|g| g["displayName"].as_str() == Some(name))
        .cloned()
}

fn user(port: u16, name: &str) -> Option<Value> {
    users(port)?
        .into_iter()
        .find(|u| u["userName"].as_str() == Some(name))
}

/// Waits (up to 30 s) until `check` holds for the user `name` at scim2-server.
fn until(
    port: u16,
    name: &str,
    what: &str,
    check: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let started = Instant::now();
    loop {
        let found = user(port, name);
        if check(found.as_ref()) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: scim2-server has {found:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn latchkey(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "latchkey {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serve(dir: &Path, port: u16, config: &Path, log_name: &str) -> Server {
    let log = std::fs::File::create(dir.join(log_name)).unwrap();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up: {}",
            std::fs::read_to_string(dir.join(log_name)).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn connect(dir: &Path, config: &Path, scim_port: u16, on_remove: &str) {
    let token_file = dir.join("scim.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    latchkey(
        config,
        &[
            "app",
            "scim",
            "set",
            SP_ENTITY,
            "--url",
            &format!("http://127.0.0.1:{scim_port}"),
            "--token-file",
            token_file.to_str().unwrap(),
            "--on-remove",
            on_remove,
        ],
    );
}

fn active(u: Option<&Value>) -> Option<bool> {
    u.map(|u| u["active"].as_bool().unwrap_or(true))
}

/// Assign, update, unassign, suspend and delete, each seen at scim2-server.
#[test]
fn scim2_server_follows_the_directory() {
    let (dir, port, _base, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(seed(&config, dir.path()));
    let scim_port = free_port();
    let _scim = start_scim2(dir.path(), scim_port);
    // Connecting queues alice (in staff, which the app is assigned to).
    connect(dir.path(), &config, scim_port, "deactivate");
    let _idp = serve(dir.path(), port, &config, "serve.log");

    let alice = until(scim_port, "alice", "alice pushed", |u| {
        active(u) == Some(true)
    })
    .unwrap();
    assert_eq!(alice["emails"][0]["value"], "alice@example.org", "{alice}");
    assert_eq!(alice["name"]["givenName"], "Alice", "{alice}");
    assert!(
        alice["externalId"].as_str().is_some_and(|s| !s.is_empty()),
        "{alice}"
    );
    let remote_id = alice["id"].clone();

    // Groups follow the application's release of `groups`: a group alice joins is made at
    // scim2-server with her in it, and leaving it takes her out.
    latchkey(
        &config,
        &["app", "set", SP_ENTITY, "--add-attr", "groups=groups"],
    );
    latchkey(&config, &["group", "add", "team"]);
    latchkey(&config, &["group", "members", "add", "team", "alice"]);
    let members = |name: &str| -> Option<Vec<String>> {
        group(scim_port, name).map(|g| {
            g["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|v| v["value"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        })
    };
    let alice_id = remote_id.as_str().unwrap().to_owned();
    let started = Instant::now();
    while members("team") != Some(vec![alice_id.clone()])
        || members("staff") != Some(vec![alice_id.clone()])
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "groups at scim2-server: team {:?}, staff {:?}",
            members("team"),
            members("staff")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Reconciliation compares groups too: taken out of `team` at scim2-server by hand, alice
    // is an update in the dry run and back in `team` after a real run.
    let sync = |dry: bool| -> Value {
        let mut args = vec!["app", "sync", SP_ENTITY, "--json"];
        if dry {
            args.push("--dry-run");
        }
        serde_json::from_str(&latchkey(&config, &args)).unwrap()
    };
    let plan = sync(true);
    assert_eq!(plan["differences"], serde_json::json!([]), "{plan}");
    let team_id = group(scim_port, "team").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patch = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}],
    });
    let out = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-X",
            "PATCH",
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
        ])
        .args([
            "-H",
            "Content-Type: application/scim+json",
            "-d",
            &patch.to_string(),
        ])
        .arg(format!("http://127.0.0.1:{scim_port}/Groups/{team_id}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(members("team"), Some(Vec::new()));
    let plan = sync(true);
    assert_eq!(
        plan["differences"],
        serde_json::json!([{"action": "update", "user_name": "alice"}]),
        "{plan}"
    );
    assert_eq!(
        members("team"),
        Some(Vec::new()),
        "a dry run changes nothing"
    );
    let applied = sync(false);
    assert_eq!(applied["differences"][0]["action"], "update", "{applied}");
    assert!(applied["differences"][0]["error"].is_null(), "{applied}");
    assert_eq!(members("team"), Some(vec![alice_id.clone()]));

    // A group renamed in the directory is renamed at scim2-server, in place: the same
    // group (its ID, and so whatever the application granted it), not a new one beside an
    // emptied one. Renamed back, likewise.
    for (from, to) in [("team", "squad"), ("squad", "team")] {
        latchkey(&config, &["group", "set", from, "--name", to]);
        let started = Instant::now();
        loop {
            let now = group(scim_port, to).map(|g| g["id"].as_str().map(str::to_owned));
            if now == Some(Some(team_id.clone())) && group(scim_port, from).is_none() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "after renaming {from} to {to}: {to} {now:?}, {from} {:?}",
                group(scim_port, from)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(members(to), Some(vec![alice_id.clone()]));
    }

    latchkey(&config, &["group", "members", "remove", "team", "alice"]);
    let started = Instant::now();
    while members("team") != Some(Vec::new()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "team at scim2-server: {:?}",
            members("team")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(members("staff"), Some(vec![alice_id.clone()]));

    latchkey(
        &config,
        &["user", "set", "alice", "--display-name", "Alice Liddell"],
    );
    let alice = until(scim_port, "alice", "display name updated", |u| {
        u.is_some_and(|u| u["displayName"] == "Alice Liddell")
    })
    .unwrap();
    assert_eq!(
        alice["id"], remote_id,
        "updated in place, not created again"
    );

    latchkey(&config, &["app", "unassign", SP_ENTITY, "staff"]);
    until(scim_port, "alice", "unassigned: deactivated", |u| {
        active(u) == Some(false)
    });
    latchkey(&config, &["app", "assign", SP_ENTITY, "staff"]);
    until(scim_port, "alice", "assigned again: active", |u| {
        active(u) == Some(true)
    });

    latchkey(&config, &["group", "members", "remove", "staff", "alice"]);
    until(
        scim_port,
        "alice",
        "removed from the group: deactivated",
        |u| active(u) == Some(false),
    );
    latchkey(&config, &["group", "members", "add", "staff", "alice"]);
    until(scim_port, "alice", "back in the group: active", |u| {
        active(u) == Some(true)
    });

    latchkey(&config, &["user", "suspend", "alice"]);
    until(scim_port, "alice", "suspended: deactivated", |u| {
        active(u) == Some(false)
    });
    latchkey(&config, &["user", "resume", "alice"]);
    let alice = until(scim_port, "alice", "resumed: active", |u| {
        active(u) == Some(true)
    })
    .unwrap();
    assert_eq!(alice["id"], remote_id, "the same account throughout");

    // A user scim2-server already has (made there by hand) is adopted, not duplicated.
    let out = Command::new("curl")
        .args(["-s", "-f", "-X", "POST", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["-H", "Content-Type: application/scim+json"])
        .args([
            "-d",
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob","active":false}"#,
        ])
        .arg(format!("http://127.0.0.1:{scim_port}/Users"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    latchkey(
        &config,
        &["user", "add", "bob", "--email", "bob@example.org"],
    );
    latchkey(&config, &["group", "members", "add", "staff", "bob"]);
    until(scim_port, "bob", "bob adopted and activated", |u| {
        active(u) == Some(true) && u.is_some_and(|u| u["emails"][0]["value"] == "bob@example.org")
    });
    assert_eq!(
        users(scim_port)
            .unwrap()
            .iter()
            .filter(|u| u["userName"] == "bob")
            .count(),
        1
    );

    // Deleting alice deactivates her (on-remove deactivate); with on-remove delete, deleting
    // bob deletes him there.
    latchkey(&config, &["user", "delete", "alice"]);
    until(scim_port, "alice", "deleted: deactivated", |u| {
        active(u) == Some(false)
    });
    connect(dir.path(), &config, scim_port, "delete");
    latchkey(&config, &["user", "delete", "bob"]);
    until(scim_port, "bob", "deleted there", |u| u.is_none());

    let status: Value = serde_json::from_str(&latchkey(
        &config,
        &["app", "scim", "show", SP_ENTITY, "--json"],
    ))
    .unwrap();
    assert_eq!(status["queue_length"], 0, "{status}");
    assert!(status["last_success_at"].is_string(), "{status}");
}

/// The change is committed while scim2-server is not there, the IdP is killed (SIGKILL),
/// scim2-server starts, the IdP starts again: the change arrives.
#[test]
fn a_change_survives_kill_9_of_the_idp() {
    let (dir, port, _base, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(seed(&config, dir.path()));
    let scim_port = free_port();
    connect(dir.path(), &config, scim_port, "deactivate");
    let mut idp = serve(dir.path(), port, &config, "serve-1.log");
    latchkey(
        &config,
        &["user", "set", "alice", "--display-name", "Before The Kill"],
    );
    // Let the worker try (and fail) at least once.
    let started = Instant::now();
    loop {
        let status: Value = serde_json::from_str(&latchkey(
            &config,
            &["app", "scim", "show", SP_ENTITY, "--json"],
        ))
        .unwrap();
        if status["last_error"].is_string() {
            assert!(status["queue_length"].as_u64().unwrap() >= 1, "{status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // std's Child::kill is SIGKILL on Unix: no shutdown code runs.
    idp.0.kill().unwrap();
    idp.0.wait().unwrap();
    drop(idp);

    let _scim = start_scim2(dir.path(), scim_port);
    assert!(user(scim_port, "alice").is_none());
    let _idp = serve(dir.path(), port, &config, "serve-2.log");
    until(scim_port, "alice", "delivered after the restart", |u| {
        u.is_some_and(|u| u["displayName"] == "Before The Kill" && u["active"] == true)
    });
}
