//! Running `latchkey serve` for real on a loopback socket, seeded with a user and an SP:
//! the helpers of `tests/cli/serve.rs` and of the pysaml2 test in `tests/oracles/serve.rs`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use latchkey_idp::apps::NewApplication;
use latchkey_idp::directory::{NewGroup, NewUser};
use latchkey_idp::password::Password;
use latchkey_idp::{Actor, Config, Store};

pub(crate) const SP_ENTITY: &str = "https://sp.interop.test/metadata";
pub(crate) const SP_ACS: &str = "https://sp.interop.test/acs";
pub(crate) const PASSWORD: &str = "interop password 1";

/// Kills the server when the test ends, however it ends.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on now, and that no other test of this process was
/// given. Tests run in parallel and start their servers a moment after asking: without the
/// record, the OS hands a port freed by one test's probe to the next probe, and two servers
/// (an IdP and a demo app, say) race for it.
pub(crate) fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A raw HTTP/1.1 GET on the socket: (status line, headers and body).
pub(crate) fn http_get(port: u16, path: &str) -> Option<String> {
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

pub(crate) struct Seeded {
    pub(crate) app_id: String,
    pub(crate) key: PathBuf,
    pub(crate) cert: PathBuf,
}

pub(crate) async fn seed(config: &Path, dir: &Path) -> Seeded {
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

/// A temporary directory with a `latchkey.toml` for a server on a free loopback port, with
/// cheap password hashing; returns the directory, the port, the base URL and the file.
pub(crate) fn cheap_server_config() -> (tempfile::TempDir, u16, String, std::path::PathBuf) {
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
