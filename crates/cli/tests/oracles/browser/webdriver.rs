//! Just enough of the W3C WebDriver protocol to drive headless Chromium through
//! chromedriver: sessions, navigation, elements, script, screenshots.
//!
//! Hand-written over reqwest (already in the workspace) rather than fantoccini, whose
//! `webdriver` and hyper TLS dependencies would add a second HTTP stack to build for a
//! dozen endpoints. Every wait is a bounded poll that fails with what it last saw.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait polls before it fails.
pub const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Finds a program: the environment variable if set, else the first name found on PATH.
fn locate(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A running chromedriver, stopped on drop together with any browser still open.
pub struct Driver {
    child: Child,
    port: u16,
    base: String,
    chromium: PathBuf,
    http: reqwest::Client,
    /// Sessions not yet quit: a failing test leaves some, and killing chromedriver alone
    /// would orphan their browsers.
    open: Arc<Mutex<Vec<String>>>,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it is ready.
    ///
    /// Panics with the install hint when chromium or chromedriver is missing: a browser
    /// test that cannot find its browser must fail, not pass by doing nothing.
    pub async fn start(port: u16, log: &Path) -> Driver {
        let hint = "the browser tests need Debian's `chromium` and `chromium-driver` \
                    (scripts/test installs them; or set CHROMIUM and CHROMEDRIVER)";
        let chromium = locate("CHROMIUM", &["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("chromium not found: {hint}"));
        let chromedriver = locate("CHROMEDRIVER", &["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found: {hint}"));
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {hint}", chromedriver.display()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let driver = Driver {
            child,
            port,
            open: Arc::default(),
            base: format!("http://127.0.0.1:{port}"),
            chromium,
            http,
        };
        let started = Instant::now();
        loop {
            let status = driver.http.get(format!("{}/status", driver.base)).send();
            if let Ok(r) = status.await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not become ready: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// A new headless browser with its own empty profile in `profile` (cookies included).
    pub async fn browser(&self, profile: &Path) -> Browser {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-proxy-server",
            "--window-size=1100,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": self.chromium.to_string_lossy(),
                        "args": args,
                    },
                    "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
                }
            }
        });
        let reply = command(&self.http, "POST", &format!("{}/session", self.base), caps)
            .await
            .unwrap_or_else(|e| panic!("chromium did not start through chromedriver: {e}"));
        let id = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {reply}"))
            .to_owned();
        self.open.lock().unwrap().push(id.clone());
        Browser {
            http: self.http.clone(),
            session: format!("{}/session/{id}", self.base),
            id,
            open: self.open.clone(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Blocking, as drop must be: chromedriver closes the browser before it answers.
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for id in open {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(WAIT));
                let _ = write!(
                    s,
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command: the reply's `value`, or the WebDriver error as text.
async fn command(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Value,
) -> Result<Value, String> {
    let request = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(&body),
    };
    let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let reply: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    let value = reply.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{method} {url}: {} ({})",
            value["error"].as_str().unwrap_or("?"),
            value["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ))
    }
}

/// One browser (one WebDriver session). Closed with [`Browser::quit`]; one left open (a
/// failed step) is closed when the [`Driver`] drops.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    id: String,
    open: Arc<Mutex<Vec<String>>>,
}

impl Browser {
    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        command(&self.http, method, &format!("{}{path}", self.session), body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Any command of this session, such as the WebAuthn virtual authenticator's
    /// (`/webauthn/authenticator`...); `path` is relative to the session.
    pub async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.cmd(method, path, body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.cmd("GET", "/url", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// What a person reads on the page.
    pub async fn text(&self) -> String {
        self.script(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The JSON document the browser shows (Chromium puts it in a `<pre>`).
    pub async fn json(&self) -> Value {
        let raw = self
            .script(
                "const p = document.querySelector('pre'); \
                 return p ? p.textContent : document.body.innerText;",
                json!([]),
            )
            .await;
        let raw = raw.as_str().unwrap_or_default();
        serde_json::from_str(raw).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
    }

    async fn element(&self, css: &str) -> Option<String> {
        let found = command(
            &self.http,
            "POST",
            &format!("{}/element", self.session),
            json!({ "using": "css selector", "value": css }),
        )
        .await
        .ok()?;
        found[ELEMENT_KEY].as_str().map(str::to_owned)
    }

    /// Waits for an element matching `css` and returns its reference.
    async fn wait_element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(e) = self.element(css).await {
                return e;
            }
            if started.elapsed() > WAIT {
                panic!(
                    "no element {css} on {} after {WAIT:?}; the page says:\n{}",
                    self.url().await,
                    self.text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn count(&self, css: &str) -> usize {
        let all = self
            .cmd(
                "POST",
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        all.as_array().map_or(0, Vec::len)
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait_element(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_element(css).await;
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Waits until the page's URL starts with `prefix` and its text contains `needle`
    /// (a chain of redirects and auto-posted forms is settled once both hold).
    pub async fn wait_for(&self, prefix: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if url.starts_with(prefix) {
                let text = self.text().await;
                if text.contains(needle) {
                    return text;
                }
            }
            if started.elapsed() > WAIT {
                panic!(
                    "waited {WAIT:?} for {prefix}... showing {needle:?}; the browser is on \
                     {url} showing:\n{}",
                    self.text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn quit(self) {
        let _ = command(&self.http, "DELETE", &self.session, json!({})).await;
        self.open.lock().unwrap().retain(|id| *id != self.id);
    }
}
