//! `latchkey key ...` as the built binary, on the file store and on the database store
//! (`[keys] store = "database"`, temp SQLite), and `latchkey serve` signing from the database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHEAP: &str = "[password]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n";
const DATABASE: &str = "[keys]\nstore = \"database\"\nkek_file = \"kek\"\n";

/// A temp working directory with a `latchkey.toml` of `extra` plus cheap password hashing.
fn workdir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), extra);
    dir
}

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(dir.join("latchkey.toml"), format!("{CHEAP}{extra}")).unwrap();
}

fn latchkey_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.args(args).current_dir(dir);
    for var in [
        "DATABASE_URL",
        "LATCHKEY_DATABASE_URL",
        "LATCHKEY_CONFIG",
        "LATCHKEY_DATA_DIR",
        "LATCHKEY_KEY_STORE",
        "LATCHKEY_KEK_FILE",
        "LATCHKEY_KEK",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = latchkey_env(dir, args, &[]);
    assert!(
        out.status.success(),
        "latchkey {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exit status `code` (1 refused, 2 bad input or
/// usage, 3 unavailable) and returns its single stderr line.
fn fails_env(dir: &Path, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
    let out = latchkey_env(dir, args, env);
    assert_eq!(
        out.status.code(),
        Some(code),
        "latchkey {args:?} should have failed with {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    stderr.trim_end().to_string()
}

fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    fails_env(dir, args, &[], code)
}

fn list(dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&ok(dir, &["key", "list", "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A listing with timestamps cut to the microseconds the database keeps (files keep
/// nanoseconds).
fn to_micros(keys: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut keys = keys.to_vec();
    for key in &mut keys {
        for field in ["created_at", "activated_at", "retired_at"] {
            if let Some(t) = key[field].as_str() {
                use time::format_description::well_known::Rfc3339;
                let t = time::OffsetDateTime::parse(t, &Rfc3339).unwrap();
                let t = t.replace_microsecond(t.microsecond()).unwrap();
                key[field] = t.format(&Rfc3339).unwrap().into();
            }
        }
    }
    keys
}

fn roles(keys: &[serde_json::Value]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn database_store_rollover_through_the_cli() {
    let dir = workdir(DATABASE);
    let d = dir.path();
    // No KEK yet: one line that says what to set.
    let err = fails(d, &["key", "list"], 2);
    assert!(err.contains("kek"), "{err}");

    let made = ok(d, &["key", "new-kek", "kek"]);
    assert!(made.contains("key-encryption key"), "{made}");
    let mode = std::fs::metadata(d.join("kek"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Never overwritten: every key sealed under it would be lost.
    let before = std::fs::read(d.join("kek")).unwrap();
    fails(d, &["key", "new-kek", "kek"], 1);
    assert_eq!(std::fs::read(d.join("kek")).unwrap(), before);

    assert!(ok(d, &["key", "list"]).contains("no signing keys yet"));
    let init = ok(d, &["key", "init", "--alg", "ecdsa-p256"]);
    assert!(init.starts_with("active key "), "{init}");
    let rotate = ok(d, &["key", "rotate", "--alg", "ecdsa-p256"]);
    assert!(rotate.starts_with("next key "), "{rotate}");
    let keys = list(d);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["status"], "active");
    assert_eq!(keys[1]["status"], "next");
    let table = ok(d, &["key", "list"]);
    assert!(
        table.starts_with("key store: the sqlite database (key-encryption key "),
        "{table}"
    );
    assert!(table.contains(keys[1]["id"].as_str().unwrap()), "{table}");
    let next_cert = ok(d, &["key", "cert", "--next"]);
    assert!(next_cert.starts_with("-----BEGIN CERTIFICATE-----"));

    let activated = ok(d, &["key", "activate", "--force"]);
    assert!(
        activated.contains(keys[1]["id"].as_str().unwrap()),
        "{activated}"
    );
    assert_eq!(ok(d, &["key", "cert"]), next_cert);
    let err = fails(d, &["key", "activate"], 1);
    assert!(err.contains("no next key"), "{err}");

    ok(d, &["key", "rotate", "--alg", "ecdsa-p256"]);
    let retired = ok(d, &["key", "retire-next"]);
    assert!(retired.contains("retired"), "{retired}");
    let keys = list(d);
    assert_eq!(keys.len(), 3);
    assert_eq!(keys.iter().filter(|k| k["status"] == "retired").count(), 2);
    // The keys are in the database, not in files.
    assert!(!d.join("latchkey-data/keys").exists());

    // Replacing the KEK: re-seal under a new one, then point the nodes at it.
    ok(d, &["key", "new-kek", "kek2"]);
    let rewrapped = ok(d, &["key", "rewrap", "--new-kek", "kek2"]);
    assert!(rewrapped.starts_with("3 key(s) re-sealed"), "{rewrapped}");
    let err = fails(d, &["key", "cert"], 2);
    assert!(err.contains("sealed with"), "{err}");
    write_config(d, "[keys]\nstore = \"database\"\nkek_file = \"kek2\"\n");
    assert_eq!(ok(d, &["key", "cert"]), next_cert);
    ok(d, &["key", "rewrap", "--new-kek", "kek"]);
    write_config(d, DATABASE);
    assert_eq!(ok(d, &["key", "cert"]), next_cert);

    // Another KEK (from the environment, which wins over the file) is named, not garbage.
    let other = base64_of([7u8; 32]);
    let err = fails_env(d, &["key", "cert"], &[("LATCHKEY_KEK", &other)], 2);
    assert!(
        err.contains("LATCHKEY_KEK") && err.contains("sealed with"),
        "{err}"
    );
    let err = fails_env(d, &["key", "list"], &[("LATCHKEY_KEK", "c2hvcnQ=")], 2);
    assert!(err.contains("LATCHKEY_KEK") && err.contains("32"), "{err}");

    // A KEK file others can read is refused like a private key file.
    std::fs::set_permissions(d.join("kek"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(d, &["key", "list"], 2);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn file_keys_move_to_the_database_with_import_files() {
    let dir = workdir("");
    let d = dir.path();
    ok(d, &["key", "init", "--alg", "ecdsa-p256"]);
    ok(d, &["key", "rotate", "--alg", "ecdsa-p256"]);
    let file_keys = list(d);
    let file_cert = ok(d, &["key", "cert"]);
    assert!(d.join("latchkey-data/keys/state.json").is_file());

    // Import while the nodes still use files, then switch.
    ok(d, &["key", "new-kek", "kek"]);
    write_config(d, "[keys]\nkek_file = \"kek\"\n");
    let imported = ok(d, &["key", "import-files"]);
    assert!(imported.starts_with("imported 2 key(s)"), "{imported}");
    let err = fails(d, &["key", "import-files"], 1);
    assert!(err.contains("already holds 2"), "{err}");

    write_config(d, DATABASE);
    assert_eq!(to_micros(&list(d)), to_micros(&file_keys));
    assert_eq!(roles(&list(d)), roles(&file_keys));
    assert_eq!(ok(d, &["key", "cert"]), file_cert);
    ok(d, &["key", "activate", "--force"]);
    assert_eq!(roles(&list(d))[0].0, roles(&file_keys)[1].0);
    // The file store is left as it was.
    write_config(d, "");
    assert_eq!(list(d), file_keys);
}

#[test]
fn activation_waits_for_the_metadata_cache_duration() {
    let dir = workdir("");
    let d = dir.path();
    let as_kim = [("USER", "kim")];
    let init = latchkey_env(d, &["key", "init", "--alg", "ecdsa-p256"], &as_kim);
    assert!(init.status.success());
    // A second `init` finds the key: nothing changes, nothing is recorded.
    assert!(latchkey_env(d, &["key", "init"], &as_kim).status.success());
    let rotated = latchkey_env(d, &["key", "rotate", "--alg", "ecdsa-p256"], &as_kim);
    assert!(rotated.status.success());
    let rotated = String::from_utf8(rotated.stdout).unwrap();
    assert!(
        rotated.contains("`latchkey key activate` is possible from "),
        "{rotated}"
    );
    let next = list(d)[1]["id"].as_str().unwrap().to_owned();

    // Seconds after `rotate`: refused in one line that says how long is left and how to force.
    let err = fails(d, &["key", "activate"], 1);
    assert!(err.contains(&format!("next key {next}")), "{err}");
    assert!(
        err.contains("Wait 24h more") || err.contains("Wait 23h 59m"),
        "{err}"
    );
    assert!(err.contains("`latchkey key activate --force`"), "{err}");
    assert_eq!(list(d)[1]["status"], "next");

    // --force does it, with a warning.
    let forced = latchkey_env(d, &["key", "activate", "--force"], &as_kim);
    assert!(forced.status.success());
    assert!(
        String::from_utf8(forced.stdout)
            .unwrap()
            .contains(&format!("key {next} is now active"))
    );
    let warning = String::from_utf8(forced.stderr).unwrap();
    assert!(warning.starts_with("warning: "), "{warning}");
    assert_eq!(list(d)[0]["id"], next.as_str());

    // Every change, the first key's generation included, is in the audit log under the
    // admin's name.
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&ok(d, &["audit", "--json"])).unwrap();
    let keys: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("key."))
        .map(|e| {
            let actor = e["actor"].as_str().unwrap();
            (
                e["action"].as_str().unwrap(),
                actor.split('@').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("key.activate", "cli:kim"),
            ("key.rotate", "cli:kim"),
            ("key.generate", "cli:kim")
        ]
    );
    let activated = events
        .iter()
        .find(|e| e["action"] == "key.activate")
        .unwrap();
    assert_eq!(activated["after"]["forced"], true);

    // With a one-second cacheDuration the wait is over a second later.
    write_config(d, "[keys]\nmetadata_cache_seconds = 1\n");
    ok(d, &["key", "rotate", "--alg", "ecdsa-p256"]);
    std::thread::sleep(Duration::from_millis(1100));
    let activated = ok(d, &["key", "activate"]);
    assert!(activated.contains("is now active"), "{activated}");
}

#[test]
fn key_store_settings_are_checked() {
    let dir = workdir("[keys]\nstore = \"vault\"\n");
    let err = fails(dir.path(), &["key", "list"], 2);
    assert!(err.contains("vault"), "{err}");

    let dir = workdir("");
    let err = fails(dir.path(), &["key", "rewrap", "--new-kek", "kek"], 2);
    assert!(err.contains("store = \"database\""), "{err}");
    let kek = base64_of([9u8; 32]);
    let database = [
        ("LATCHKEY_KEY_STORE", "database"),
        ("LATCHKEY_KEK", kek.as_str()),
    ];
    let err = fails_env(
        dir.path(),
        &["key", "rewrap", "--new-kek", "missing"],
        &database,
        2,
    );
    assert!(err.contains("missing"), "{err}");
    let err = fails_env(
        dir.path(),
        &["key", "list"],
        &[("LATCHKEY_KEY_STORE", "vault")],
        2,
    );
    assert!(err.contains("LATCHKEY_KEY_STORE"), "{err}");
    // The environment switches a files config to the database (which needs a KEK).
    let err = fails_env(
        dir.path(),
        &["key", "list"],
        &[("LATCHKEY_KEY_STORE", "database")],
        2,
    );
    assert!(err.contains("kek"), "{err}");
    let out = latchkey_env(
        dir.path(),
        &["key", "init", "--alg", "ecdsa-p256"],
        &database,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("latchkey-data/keys").exists());
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

#[test]
fn serve_signs_with_the_database_key() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = workdir(&format!(
        "{DATABASE}[server]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}\"\n\
         cookie_secure = false\nkey_algorithm = \"ecdsa_p256\"\n"
    ));
    let d = dir.path();
    ok(d, &["key", "new-kek", "kek"]);
    let log = std::fs::File::create(d.join("serve.log")).unwrap();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("serve")
            .current_dir(d)
            .env_remove("LATCHKEY_KEK")
            .env_remove("LATCHKEY_KEY_STORE")
            .env_remove("LATCHKEY_CONFIG")
            .env_remove("DATABASE_URL")
            .env_remove("LATCHKEY_DATABASE_URL")
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
            std::fs::read_to_string(d.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server made the first key in the database; its certificate is in the metadata.
    let keys = list(d);
    assert_eq!(roles(&keys).len(), 1);
    let cert: String = ok(d, &["key", "cert"])
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let metadata = http_get(port, "/saml/metadata").unwrap();
    assert!(metadata.starts_with("HTTP/1.1 200"), "{metadata}");
    assert!(metadata.contains(&cert), "metadata lacks the database key");
    assert!(!d.join("latchkey-data/keys").exists());
}

fn base64_of(bytes: [u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
