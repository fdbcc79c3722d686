//! The IdP side of the SP oracles (Shibboleth, mod_auth_mellon): a real `latchkey serve`
//! on 127.0.0.1 with alice (in `staff`) and carol (in no group), the admin CLI against its
//! store, and the steps of a scripted browser ([`crate::client`]) every such test takes:
//! signing in on the IdP's form, reading the SAML messages of the hops, reading a page
//! that prints Apache's environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use latchkey_idp::directory::{NewGroup, NewUser};
use latchkey_idp::password::Password;
use latchkey_idp::{Actor, Config, Store};
use latchkey_saml::binding::{BindingLimits, redirect};

use crate::apache::free_port;
use crate::client::{self, Client, Page, forms};

pub const PASSWORD: &str = "sp interop password 1";

/// Kills `latchkey serve` when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Idp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its entity ID (`{base}/saml/metadata`).
    pub entity_id: String,
    /// Its metadata, as served.
    pub metadata: String,
    /// Its configuration file, for [`cli`].
    pub config: PathBuf,
    _server: Server,
}

impl Idp {
    /// Seeds a store under `dir` and serves it on a free port; returns once the metadata
    /// is served.
    pub async fn start(dir: &Path) -> Idp {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let config = dir.join("latchkey.toml");
        // Cheap Argon2: the tests measure interoperability, not hashing.
        std::fs::write(
            &config,
            format!(
                "data_dir = \"data\"\n[password]\nmemory_kib = 256\niterations = 1\n\
                 [server]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\n\
                 cookie_secure = false\n"
            ),
        )
        .unwrap();
        seed(&config).await;
        let serve_log = dir.join("serve.log");
        let server = Server(
            Command::new(env!("CARGO_BIN_EXE_latchkey"))
                .args(["serve", "--config"])
                .arg(&config)
                .env_remove("LATCHKEY_CONFIG")
                .env_remove("LATCHKEY_DATABASE_URL")
                .env_remove("DATABASE_URL")
                .env_remove("LATCHKEY_DATA_DIR")
                .env_remove("LATCHKEY_LISTEN")
                .env_remove("LATCHKEY_BASE_URL")
                .env_remove("LATCHKEY_COOKIE_SECURE")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&serve_log).unwrap())
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        let probe = reqwest::Client::builder().no_proxy().build().unwrap();
        let metadata = loop {
            if let Ok(r) = probe.get(format!("{base}/saml/metadata")).send().await
                && r.status() == 200
            {
                break r.text().await.unwrap();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "latchkey serve did not come up: {}",
                std::fs::read_to_string(&serve_log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Idp {
            entity_id: format!("{base}/saml/metadata"),
            base,
            metadata,
            config,
            _server: server,
        }
    }
}

/// alice (in `staff`, which the SP is assigned to) and carol (in no group).
async fn seed(config: &Path) {
    let config = Config::load(Some(config)).unwrap();
    let store = Store::open(&config).await.unwrap();
    let admin = Actor::system();
    let mut alice = NewUser::new("alice", "alice@example.org");
    alice.given_name = Some("Alice".into());
    alice.family_name = Some("Anders".into());
    alice.display_name = Some("Alice Anders".into());
    alice.password = Some(Password::new(PASSWORD));
    let alice = store.users().create(&admin, alice).await.unwrap();
    let mut carol = NewUser::new("carol", "carol@example.org");
    carol.password = Some(Password::new(PASSWORD));
    store.users().create(&admin, carol).await.unwrap();
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
    store.close().await;
}

/// Runs an admin command against the IdP's store; it must succeed. Returns stderr too
/// (where `app add` prints what it left out of the metadata).
pub fn cli(config: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LATCHKEY_CONFIG")
        .env_remove("LATCHKEY_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("LATCHKEY_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "latchkey {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// The variables a `<!--#printenv -->` page shows, one `NAME=value` a line.
pub fn variables(page: &Page) -> BTreeMap<String, String> {
    assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
    let pre = page
        .body
        .split_once("<pre>")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .unwrap_or_else(|| panic!("not the variables page: {}", page.body))
        .0;
    pre.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), client::unescape(v)))
        .collect()
}

/// Fills and sends the IdP's sign-in form, which `page` must be.
pub async fn sign_in(b: &mut Client, page: Page, user: &str) -> Page {
    let mut form = forms(&page)
        .into_iter()
        .find(|f| f.get("password").is_some())
        .unwrap_or_else(|| panic!("no sign-in form at {}: {}", page.url, page.body));
    form.set("username", user);
    form.set("password", PASSWORD);
    let page = b.submit(&form).await;
    b.settle(page).await
}

/// The SAML message a trail entry ("GET URL") carried in its query (HTTP-Redirect), as
/// Latchkey's own binding decoder reads it, and the query's parameters.
pub fn redirect_message(entry: &str) -> (String, BTreeMap<String, String>) {
    let url = reqwest::Url::parse(entry.split_once(' ').unwrap().1).unwrap();
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let message = redirect::decode(url.query().unwrap(), &BindingLimits::default()).unwrap();
    (message.xml, query)
}

/// The one trail entry that starts with `prefix`.
pub fn hop(b: &Client, prefix: &str) -> String {
    let hops: Vec<&String> = b.trail.iter().filter(|h| h.starts_with(prefix)).collect();
    assert_eq!(hops.len(), 1, "one {prefix}... in {:#?}", b.trail);
    hops[0].clone()
}

/// The SAMLResponse of the last form posted to `acs`, decoded.
pub fn posted_response(b: &Client, acs: &str) -> String {
    let (_, fields) = b
        .posts
        .iter()
        .rev()
        .find(|(to, _)| to.as_str() == acs)
        .unwrap_or_else(|| panic!("nothing posted to {acs}: {:#?}", b.trail));
    let value = &fields.iter().find(|(n, _)| n == "SAMLResponse").unwrap().1;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    String::from_utf8(raw).unwrap()
}

/// The value of the first `name="..."` attribute in `xml` (on the root element for the
/// names used here: ID, InResponseTo).
pub fn xml_attr(xml: &str, name: &str) -> String {
    between(xml, &format!(" {name}=\""), "\"").to_owned()
}

/// The text between the first `start` in `text` and the next `end`.
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

/// Signs out from the IdP's portal and runs the single-logout page the way a browser
/// does: loads each application's frame (which sends it a LogoutRequest and takes its
/// answer), then the page the frames lead to. Returns that final page.
pub async fn portal_sign_out(b: &mut Client, idp: &Idp) -> Page {
    let portal = b.get(&format!("{}/portal", idp.base)).await;
    let form = forms(&portal)
        .into_iter()
        .find(|f| f.action.path() == "/logout")
        .unwrap_or_else(|| panic!("no sign-out form: {}", portal.body));
    let page = b.submit(&form).await;
    let page = b.settle(page).await;
    let frame = between(&page.body, "<iframe data-slo src=\"", "\"").to_owned();
    let done = between(&page.body, "id=\"slo-done\" href=\"", "\"").to_owned();
    let framed = b.get(&format!("{}{frame}", idp.base)).await;
    let framed = b.settle(framed).await;
    assert!(framed.body.contains("signed you out"), "{}", framed.body);
    b.get(&format!("{}{done}", idp.base)).await
}
