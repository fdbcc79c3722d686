//! The system under test, as a person would run it: `latchkey serve` and the two demo
//! applications as child processes of the built binary, on free ports, seeded through the
//! admin CLI. The IdP is on `127.0.0.1` and the applications on `localhost`, so the browser
//! treats them as different sites and applies SameSite rules for real.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::webdriver::WAIT;

pub(crate) use crate::shared::serve::free_port;

/// The password every seeded person has in this test.
pub fn password_of(user: &str) -> String {
    format!("{user}-browser-password")
}

/// The IdP, the wiki and the helpdesk, stopped on drop.
pub struct Stack {
    _dir: tempfile::TempDir,
    config: PathBuf,
    logs: PathBuf,
    pub idp: String,
    pub wiki: String,
    pub helpdesk: String,
    children: Vec<(&'static str, Child)>,
}

impl Stack {
    /// Writes the configurations, seeds the directory and starts the three servers.
    /// Logs go to `logs` so a failure can be read after the temp dir is gone.
    pub fn start(logs: &Path) -> Stack {
        Stack::start_with_idp_host(logs, "127.0.0.1")
    }

    /// The same with the IdP reached under `host` (`localhost` for passkeys: WebAuthn
    /// refuses an IP address as the relying party's ID).
    pub fn start_with_idp_host(logs: &Path, host: &str) -> Stack {
        Stack::start_with_config(logs, host, "")
    }

    /// The same with `extra` appended to the IdP's configuration (an `[smtp]` section).
    pub fn start_with_config(logs: &Path, host: &str, extra: &str) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-browser-")
            .tempdir()
            .unwrap();
        let (idp_port, wiki_port, helpdesk_port) = (free_port(), free_port(), free_port());
        let idp = format!("http://{host}:{idp_port}");
        let wiki = format!("http://localhost:{wiki_port}");
        let helpdesk = format!("http://localhost:{helpdesk_port}");
        let config = dir.path().join("latchkey.toml");
        // Cheap Argon2: the test measures flows, not hashing.
        std::fs::write(
            &config,
            format!(
                "data_dir = \"data\"\n\
                 [password]\nmemory_kib = 256\niterations = 1\nparallelism = 1\n\
                 [server]\nlisten = \"127.0.0.1:{idp_port}\"\nbase_url = \"{idp}\"\n\
                 cookie_secure = false\n{extra}"
            ),
        )
        .unwrap();
        for (name, port, url, extra) in [
            ("wiki", wiki_port, &wiki, ""),
            (
                "helpdesk",
                helpdesk_port,
                &helpdesk,
                "name_id_format = \"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\"\n",
            ),
        ] {
            std::fs::write(
                dir.path().join(format!("{name}.toml")),
                format!(
                    "listen = \"127.0.0.1:{port}\"\ndatabase = \"{name}.sqlite\"\n\
                     [sp]\nentity_id = \"{url}/saml/metadata\"\nacs_url = \"{url}/saml/acs\"\n\
                     allow_idp_initiated = true\nclock_skew_seconds = 60\n{extra}\
                     [sp.idp]\nmetadata_url = \"{idp}/saml/metadata\"\n"
                ),
            )
            .unwrap();
        }
        let mut stack = Stack {
            config,
            logs: logs.to_path_buf(),
            idp,
            wiki,
            helpdesk,
            children: Vec::new(),
            _dir: dir,
        };
        stack.seed();
        stack.spawn("idp", &["serve", "--config"], "latchkey.toml");
        stack.wait_listening("idp", idp_port);
        stack.spawn("wiki", &["demo-app", "wiki", "--config"], "wiki.toml");
        stack.spawn(
            "helpdesk",
            &["demo-app", "helpdesk", "--config"],
            "helpdesk.toml",
        );
        stack.wait_listening("wiki", wiki_port);
        stack.wait_listening("helpdesk", helpdesk_port);
        stack.register_apps();
        stack
    }

    /// The applications' signing key, which each made itself on first start (it signs
    /// AuthnRequests and logout messages; its certificate is in the app's metadata).
    pub fn app_key(&self, name: &str) -> latchkey_xmlsec::crypto::SigningKey {
        let pem = std::fs::read_to_string(self.config.with_file_name(format!("{name}-sp-key.pem")))
            .unwrap();
        latchkey_xmlsec::crypto::SigningKey::from_pem(&pem).unwrap()
    }

    /// The demo's directory: alice (engineering, wiki-editors), bob (support), carol (no
    /// group).
    fn seed(&self) {
        for group in ["engineering", "wiki-editors", "wiki-admins", "support"] {
            self.cli(&["group", "add", group]);
        }
        for (user, given, family, department) in [
            ("alice", "Alice", "Anders", "engineering"),
            ("bob", "Bob", "Berg", "support"),
            ("carol", "Carol", "Chen", "sales"),
        ] {
            let email = format!("{user}@example.com");
            let display = format!("{given} {family}");
            let attr = format!("department={department}");
            self.cli_stdin(
                &[
                    "user",
                    "add",
                    user,
                    "--email",
                    &email,
                    "--given-name",
                    given,
                    "--family-name",
                    family,
                    "--display-name",
                    &display,
                    "--attr",
                    &attr,
                    "--password-stdin",
                ],
                &format!("{}\n", password_of(user)),
            );
        }
        self.cli(&["group", "members", "add", "engineering", "alice"]);
        self.cli(&["group", "members", "add", "wiki-editors", "alice"]);
        self.cli(&["group", "members", "add", "support", "bob"]);
    }

    /// Registers the two applications as `latchkey demo` does: from the metadata each one
    /// serves (entity ID, ACS, single-logout endpoint, signing certificate), with its
    /// catalogue template for the attribute release; then assigns the groups.
    fn register_apps(&self) {
        for (template, base) in [
            ("latchkey-wiki", &self.wiki),
            ("latchkey-helpdesk", &self.helpdesk),
        ] {
            let metadata = format!("{base}/saml/metadata");
            self.cli(&[
                "app",
                "add",
                "--template",
                template,
                "--metadata",
                &metadata,
            ]);
        }
        let wiki_entity = format!("{}/saml/metadata", self.wiki);
        let helpdesk_entity = format!("{}/saml/metadata", self.helpdesk);
        for group in ["engineering", "wiki-editors", "wiki-admins"] {
            self.cli(&["app", "assign", &wiki_entity, group]);
        }
        for group in ["engineering", "support"] {
            self.cli(&["app", "assign", &helpdesk_entity, group]);
        }
    }

    /// A file beside the configurations (the demo apps' SCIM tokens, say).
    pub fn file(&self, name: &str) -> PathBuf {
        self.config.with_file_name(name)
    }

    /// Runs an admin command against the IdP's store; it must succeed.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_stdin(args, "")
    }

    fn cli_stdin(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("LATCHKEY_CONFIG")
            .env_remove("LATCHKEY_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("LATCHKEY_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "latchkey {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn spawn(&mut self, name: &'static str, args: &[&str], config: &str) {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let config = self.config.with_file_name(config);
        let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .arg(&config)
            .env_remove("LATCHKEY_CONFIG")
            .env_remove("LATCHKEY_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("LATCHKEY_DATA_DIR")
            .env_remove("LATCHKEY_LISTEN")
            .env_remove("LATCHKEY_BASE_URL")
            .env_remove("LATCHKEY_COOKIE_SECURE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((name, child));
    }

    fn wait_listening(&mut self, name: &str, port: u16) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = self
                .children
                .iter_mut()
                .find(|(n, _)| *n == name)
                .is_some_and(|(_, c)| !matches!(c.try_wait(), Ok(None)));
            assert!(
                !exited && started.elapsed() < Duration::from_secs(60),
                "{name} did not start listening on {port}:\n{}",
                std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A page on its own port, served at `http://localhost:PORT/` (the applications' site),
/// for messages the demo applications do not send themselves. Stopped on drop.
pub struct Relay {
    pub url: String,
    /// The page, its Content-Security-Policy and a `Set-Cookie` to send with it.
    page: Arc<Mutex<(String, String, Option<String>)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let page = Arc::new(Mutex::new((String::new(), String::new(), None)));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (page.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    // A thread per connection: the browser may open a socket early and
                    // use it later, and the page is read only once its request arrives.
                    Ok((stream, _)) => {
                        let page = shared.clone();
                        std::thread::spawn(move || serve_one(stream, &page));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Relay {
            url: format!("http://localhost:{port}/"),
            page,
            stop,
            thread: Some(thread),
        }
    }

    /// What every request gets from now on, with its Content-Security-Policy and a cookie
    /// to set, if any (the host's: cookies are shared by its ports).
    pub fn serve(&self, html: String, csp: &str, set_cookie: Option<String>) {
        *self.page.lock().unwrap() = (html, csp.to_owned(), set_cookie);
    }
}

fn serve_one(mut stream: TcpStream, page: &Mutex<(String, String, Option<String>)>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(WAIT));
    // Read the request head; the body (there is none on a GET) is ignored.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (html, csp, set_cookie) = page.lock().unwrap().clone();
    let set_cookie = set_cookie
        .map(|c| format!("Set-Cookie: {c}\r\n"))
        .unwrap_or_default();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Security-Policy: {csp}\r\nCache-Control: no-store\r\n{set_cookie}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
