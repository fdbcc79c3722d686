//! The server under test: a seeded data directory and `latchkey serve` as a child process,
//! with the readings a benchmark takes from it (CPU time and resident memory from `/proc`).

use latchkey_idp::{Clock as _, SystemClock};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use latchkey_idp::apps::{
    AttributeMapping, AttributeNameFormat, AttributeSource, NewApplication, UserField,
};
use latchkey_idp::audit::Actor;
use latchkey_idp::config::ProcessEnv;
use latchkey_idp::directory::{AttributeValue, NewGroup, NewUser};
use latchkey_idp::keys::KeyAlgorithm;
use latchkey_idp::mfa::totp::{Totp, TotpCheck, sealing_kek};
use latchkey_idp::password::Password;
use latchkey_idp::sso::{IdpKeys, SigningMaterial};
use latchkey_idp::{Config, Store};
use tempfile::TempDir;

use super::Common;
use super::client::TotpAccount;

/// The application every benchmark signs in to.
pub const APP_ENTITY_ID: &str = "https://bench-app.example.com/saml/metadata";
const APP_ACS: &str = "https://bench-app.example.com/saml/acs";

/// The seeded account number `i`.
pub fn username(i: usize) -> String {
    format!("bench{i}")
}

/// Its password (a benchmark's, never for real use).
pub fn password(i: usize) -> String {
    format!("bench{i}-password-for-load")
}

/// A running, seeded `latchkey serve`; stopped on drop.
pub struct BenchServer {
    dir: Option<TempDir>,
    config: Config,
    child: Child,
    base: String,
    app_id: String,
    clock_ticks: u64,
}

/// A data directory and configuration, not yet seeded or served.
pub struct Prepared {
    dir: TempDir,
    /// The configuration the server will load.
    pub config: Config,
    config_path: PathBuf,
    port: u16,
    base: String,
    server_bin: Option<PathBuf>,
}

impl Prepared {
    /// A throwaway data directory with a `latchkey.toml` for a server on a free loopback
    /// port, the database of `common` and `extra` appended (TOML sections).
    pub fn new(common: &Common, extra: &str) -> anyhow::Result<Prepared> {
        let parent = common.tmp.clone().unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("latchkey-bench-")
            .tempdir_in(&parent)
            .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let config_path = dir.path().join("latchkey.toml");
        let mut toml = format!(
            "data_dir = \"{}\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             base_url = \"{base}\"\ncookie_secure = false\n\
             trust_forwarded_for = true\n\n[database]\n",
            dir.path().join("data").display()
        );
        if let Some(url) = &common.database_url {
            // A JSON string is a valid TOML basic string (the same escapes).
            toml.push_str(&format!("url = {}\n", serde_json::to_string(url)?));
        }
        if let Some(n) = common.max_connections {
            toml.push_str(&format!("max_connections = {n}\n"));
        }
        toml.push_str(extra);
        std::fs::write(&config_path, toml)?;
        let config = Config::load(Some(&config_path))?;
        Ok(Prepared {
            dir,
            config,
            config_path,
            port,
            base,
            server_bin: common.server_bin.clone(),
        })
    }

    /// Makes the signing key and starts `latchkey serve` on the seeded store; returns once it
    /// listens. `app_id` is the application the SSO benchmarks sign in to (may be empty).
    pub fn launch(self, app_id: String) -> anyhow::Result<BenchServer> {
        // The key is made now, so the server and this process sign with the same one.
        IdpKeys::open(
            self.config.data_dir.join("keys"),
            KeyAlgorithm::Rsa2048,
            SystemClock.now(),
        )
        .context("cannot create the signing key")?;
        let exe = match &self.server_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("cannot find the latchkey binary")?,
        };
        let log = std::fs::File::create(self.dir.path().join("serve.log"))?;
        let child = Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let mut server = BenchServer {
            dir: Some(self.dir),
            config: self.config,
            child,
            base: self.base,
            app_id,
            clock_ticks: clock_ticks(),
        };
        server.wait_listening(self.port)?;
        Ok(server)
    }
}

impl BenchServer {
    /// Seeds `users` accounts (in one group), one application assigned to that group, the
    /// first signing key, then starts the server and waits until it listens.
    pub async fn start(common: &Common, users: usize) -> anyhow::Result<BenchServer> {
        Ok(Self::start_with(common, users, false).await?.0)
    }

    /// [`BenchServer::start`] with `[mfa] required` and a confirmed TOTP app for every
    /// account (sealed under the key the server will load), returned for the clients.
    pub async fn start_totp(
        common: &Common,
        users: usize,
    ) -> anyhow::Result<(BenchServer, Vec<TotpAccount>)> {
        Self::start_with(common, users, true).await
    }

    async fn start_with(
        common: &Common,
        users: usize,
        totp: bool,
    ) -> anyhow::Result<(BenchServer, Vec<TotpAccount>)> {
        let extra = if totp {
            "\n[mfa]\nrequired = true\n"
        } else {
            ""
        };
        let prepared = Prepared::new(common, extra)?;
        let app_id = seed(&prepared.config, users).await?;
        let accounts = if totp {
            enrol_totp(&prepared.config, users).await?
        } else {
            Vec::new()
        };
        Ok((prepared.launch(app_id)?, accounts))
    }

    fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                bail!(
                    "the server exited; see {}",
                    self.dir().join("serve.log").display()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the server did not listen on {addr} within a minute")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The application's ID, for `/saml/init/{app}`.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The site for the seeded account 0.
    pub fn site(&self) -> super::client::Site {
        super::client::Site {
            base: self.base.clone(),
            app_id: self.app_id.clone(),
            user: username(0),
            password: password(0),
        }
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The throwaway data directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), TempDir::path)
    }

    /// Stops the server and keeps its data directory (for a look at the database); returns
    /// where it is.
    pub fn stop_keeping_data(mut self) -> PathBuf {
        self.kill();
        self.dir.take().map(TempDir::keep).unwrap_or_default()
    }

    /// The key the server signs with.
    pub fn signing_material(&self) -> anyhow::Result<Arc<SigningMaterial>> {
        let keys = IdpKeys::open(
            self.config.data_dir.join("keys"),
            KeyAlgorithm::Rsa2048,
            SystemClock.now(),
        )?;
        Ok(keys.current()?)
    }

    /// The server's store, opened from this process (SQLite in WAL mode: both may write).
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.config).await?)
    }

    /// User + system CPU time the server has used so far (all its threads).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        process_cpu(self.pid(), self.clock_ticks)
    }

    /// The server's resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS")
    }

    /// What the resident set is made of, in KiB: anonymous memory (heap, stacks: what the
    /// process itself costs) and file pages (the binary's and libraries' code and data,
    /// shared with the page cache and reclaimable), `RssAnon` and `RssFile`.
    pub fn rss_parts_kib(&self) -> anyhow::Result<(u64, u64)> {
        Ok((self.status_kib("RssAnon")?, self.status_kib("RssFile")?))
    }

    /// The server's peak resident set size so far in KiB (`VmHWM`, kept by the kernel).
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM")
    }

    /// A `kB` line of `/proc/<pid>/status`.
    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in {path}"))
    }

    /// Stops the server (SIGKILL: the data directory is thrown away anyway).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// User + system CPU time process `pid` has used so far (all its threads), from
/// `/proc/<pid>/stat` in units of `clock_ticks` per second.
pub fn process_cpu(pid: u32, clock_ticks: u64) -> anyhow::Result<Duration> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    // Fields after the parenthesised command name: state is the 1st, utime the 12th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks.max(1) as f64,
    ))
}

/// A port nothing listens on right now (the OS picks it; a race with another process
/// taking it before the server does is possible, and then the start fails clearly).
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// `sysconf(_SC_CLK_TCK)` without libc: `getconf`, else Linux's usual 100.
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Creates the group, the users and the application; returns the application's ID.
async fn seed(config: &Config, users: usize) -> anyhow::Result<String> {
    let store = Store::open(config).await?;
    let actor = Actor::system();
    let group = store
        .groups()
        .create(&actor, NewGroup::new("staff"))
        .await?;
    for i in 0..users {
        let name = username(i);
        let mut new = NewUser::new(&name, format!("{name}@example.org"));
        new.given_name = Some("Bench".into());
        new.family_name = Some(format!("User {i}"));
        new.display_name = Some(format!("Bench User {i}"));
        new.attributes
            .insert("employeeNumber".into(), AttributeValue::One(format!("{i}")));
        new.password = Some(Password::new(password(i)));
        let user = store.users().create(&actor, new).await?;
        store.groups().add_member(&actor, group.id, user.id).await?;
    }
    let app = store.apps().create(&actor, application()).await?;
    store.apps().assign(&actor, app.id, group.id).await?;
    store.close().await;
    Ok(app.id.to_string())
}

/// A confirmed TOTP app for each of the `users` accounts, as an authenticator would hold
/// it; sealed under the key `latchkey serve` loads (`<data_dir>/keys/mfa.kek`, made here).
async fn enrol_totp(config: &Config, users: usize) -> anyhow::Result<Vec<TotpAccount>> {
    let store = Store::open(config).await?;
    let kek = sealing_kek(config, &ProcessEnv).context("the TOTP sealing key")?;
    let totp = Totp::new(&store, &kek);
    let mut out = Vec::with_capacity(users);
    for i in 0..users {
        let user = store
            .users()
            .find_by_username(&username(i))
            .await?
            .context("a seeded account is missing")?;
        let enrolment = totp.begin(&user, "bench", "bench").await?;
        let secret = totp_rs::Secret::Encoded(enrolment.secret_base32.to_string())
            .to_bytes()
            .map_err(|e| anyhow::anyhow!("the enrolment's secret: {e:?}"))?;
        let app = totp_rs::TOTP::new_unchecked(
            totp_rs::Algorithm::SHA1,
            6,
            0,
            30,
            secret,
            None,
            String::new(),
        );
        let step = SystemClock.now().unix_timestamp() / 30;
        let code = app.generate(u64::try_from(step * 30).unwrap_or(0));
        let done = totp
            .confirm(
                &Actor::user(user.id),
                &user,
                &enrolment.factor_id,
                &code,
                "seed",
            )
            .await?;
        if !matches!(done, TotpCheck::Accepted { .. }) {
            bail!("enrolling account {i}: {done:?}");
        }
        out.push(TotpAccount {
            index: i,
            app,
            last_step: AtomicI64::new(step),
        });
    }
    store.close().await;
    Ok(out)
}

/// Six attributes and the assertion signed (not the Response), as in the protocol layer's
/// issuance benchmark, so the two rates compare.
fn application() -> NewApplication {
    let mut app = NewApplication::new(APP_ENTITY_ID, "Bench app", APP_ACS);
    app.sign_response = false;
    app.sign_assertion = true;
    let uri = |name: &str, friendly: &str, source: AttributeSource| AttributeMapping {
        name: name.into(),
        name_format: AttributeNameFormat::Uri,
        friendly_name: Some(friendly.into()),
        source,
        filter: None,
    };
    app.attributes = vec![
        uri(
            "urn:oid:0.9.2342.19200300.100.1.3",
            "mail",
            AttributeSource::Field(UserField::Email),
        ),
        uri(
            "urn:oid:2.5.4.42",
            "givenName",
            AttributeSource::Field(UserField::GivenName),
        ),
        uri(
            "urn:oid:2.5.4.4",
            "sn",
            AttributeSource::Field(UserField::FamilyName),
        ),
        uri(
            "urn:oid:2.16.840.1.113730.3.1.241",
            "displayName",
            AttributeSource::Field(UserField::DisplayName),
        ),
        uri(
            "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
            "isMemberOf",
            AttributeSource::Groups,
        ),
        uri(
            "urn:oid:2.16.840.1.113730.3.1.3",
            "employeeNumber",
            AttributeSource::Field(UserField::Attribute("employeeNumber".into())),
        ),
    ];
    app
}
