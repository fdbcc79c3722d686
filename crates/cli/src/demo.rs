//! `latchkey demo`: the whole story on one machine in a minute.
//!
//! Starts the IdP on `127.0.0.1:8080` and the two demo applications on `localhost:8081`
//! (wiki) and `localhost:8082` (helpdesk), each as a child process of this binary, so the
//! IdP and the applications are different sites to the browser exactly as in production.
//! Seeds a directory (alice, bob, carol), registers both applications and assigns groups,
//! then prints where to click. Everything lives in one folder; a second run reuses it.

use latchkey_idp::{Clock as _, SystemClock};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::stdout::outln;
use anyhow::{Context as _, bail};
use clap::Args;
use latchkey_idp::apps::{NewApplication, SpMetadata, SpMetadataOptions};
use latchkey_idp::audit::Actor;
use latchkey_idp::catalog;
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::{AttributeValue, NewGroup, NewUser};
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy};
use latchkey_idp::password::Password;
use latchkey_idp::{Config, Store};

/// Options of `latchkey demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's configuration, databases, keys and logs (reused when present).
    #[arg(long, default_value = "latchkey-demo")]
    dir: PathBuf,
}

const IDP_ADDR: &str = "127.0.0.1:8080";
const IDP_URL: &str = "http://127.0.0.1:8080";
const WIKI_ADDR: &str = "127.0.0.1:8081";
const WIKI_URL: &str = "http://localhost:8081";
const HELPDESK_ADDR: &str = "127.0.0.1:8082";
const HELPDESK_URL: &str = "http://localhost:8082";

/// A person in the seeded directory.
struct Person {
    username: &'static str,
    given: &'static str,
    family: &'static str,
    department: &'static str,
    groups: &'static [&'static str],
    /// Console roles: the demo has one admin and one helpdesk colleague.
    roles: &'static [Role],
}

const PEOPLE: [Person; 3] = [
    Person {
        username: "alice",
        given: "Alice",
        family: "Anders",
        department: "engineering",
        groups: &["engineering", "wiki-editors"],
        roles: &[Role::Admin],
    },
    Person {
        username: "bob",
        given: "Bob",
        family: "Berg",
        department: "support",
        groups: &["support"],
        roles: &[Role::Helpdesk],
    },
    Person {
        username: "carol",
        given: "Carol",
        family: "Chen",
        department: "sales",
        groups: &[],
        roles: &[],
    },
];

const GROUPS: [&str; 4] = ["engineering", "wiki-editors", "wiki-admins", "support"];

/// Which groups may use which demo application.
const ASSIGNMENTS: [(&str, &[&str]); 2] = [
    (
        "latchkey-wiki",
        &["engineering", "wiki-editors", "wiki-admins"],
    ),
    ("latchkey-helpdesk", &["engineering", "support"]),
];

/// The demo application that requires a second factor (the other does not).
const MFA_APP: &str = "latchkey-helpdesk";

/// The demo's password for a person: printed on start, never for real use.
fn password_of(username: &str) -> String {
    format!("{username}-demo-password")
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = absolute(&args.dir)?;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    write_configs(&dir)?;
    for addr in [IDP_ADDR, WIKI_ADDR, HELPDESK_ADDR] {
        if port_open(addr) {
            bail!("{addr} is already in use: stop whatever listens there (an earlier demo?) first");
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let config = Config::load(Some(&dir.join("latchkey.toml")))?;
    runtime.block_on(seed_directory(&config))?;

    let exe = std::env::current_exe().context("cannot find the latchkey binary")?;
    let mut children = Children::default();
    children.spawn(
        &exe,
        &["serve", "--config"],
        &dir.join("latchkey.toml"),
        &dir.join("logs/idp.log"),
    )?;
    wait_for(IDP_ADDR, "the IdP", &dir.join("logs/idp.log"))?;
    children.spawn(
        &exe,
        &["demo-app", "wiki", "--config"],
        &dir.join("wiki/wiki.toml"),
        &dir.join("logs/wiki.log"),
    )?;
    children.spawn(
        &exe,
        &["demo-app", "helpdesk", "--config"],
        &dir.join("helpdesk/helpdesk.toml"),
        &dir.join("logs/helpdesk.log"),
    )?;
    wait_for(WIKI_ADDR, "the wiki", &dir.join("logs/wiki.log"))?;
    wait_for(
        HELPDESK_ADDR,
        "the helpdesk",
        &dir.join("logs/helpdesk.log"),
    )?;
    runtime.block_on(register_apps(&config))?;
    runtime.block_on(connect_wiki_scim(&config, &dir))?;
    print_walkthrough(&dir)?;

    // Run until Ctrl-C, SIGTERM or a child's death; the children go down with us either way.
    let stopped_by = runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch for SIGTERM")?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return anyhow::Ok(None),
                _ = term.recv() => return Ok(None),
                _ = tick.tick() => {
                    if let Some(name) = children.exited() {
                        return Ok(Some(name));
                    }
                }
            }
        }
    });
    children.stop_all();
    match stopped_by? {
        None => {
            outln!("\nstopped; the demo's data stays in {}", dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(name) => bail!(
            "{name} stopped unexpectedly; see the logs in {}",
            dir.join("logs").display()
        ),
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

/// Writes the three configuration files unless they exist (a second run keeps edits).
fn write_configs(dir: &Path) -> anyhow::Result<()> {
    let idp = format!(
        "# The demo IdP. Plain HTTP on loopback only, hence cookie_secure = false.\n\
         data_dir = \"data\"\n\n\
         [server]\n\
         listen = \"{IDP_ADDR}\"\n\
         base_url = \"{IDP_URL}\"\n\
         cookie_secure = false\n"
    );
    write_if_missing(&dir.join("latchkey.toml"), &idp)?;
    for (name, addr, url, extra) in [
        ("wiki", WIKI_ADDR, WIKI_URL, ""),
        (
            "helpdesk",
            HELPDESK_ADDR,
            HELPDESK_URL,
            "name_id_format = \"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\"\n",
        ),
    ] {
        std::fs::create_dir_all(dir.join(name))?;
        let text = format!(
            "# The demo {name}: `latchkey demo-app {name} --config {name}.toml`.\n\
             listen = \"{addr}\"\n\
             database = \"{name}.sqlite\"\n\n\
             [sp]\n\
             entity_id = \"{url}/saml/metadata\"\n\
             acs_url = \"{url}/saml/acs\"\n\
             allow_idp_initiated = true\n\
             clock_skew_seconds = 60\n\
             {extra}\n\
             [sp.idp]\n\
             metadata_url = \"{IDP_URL}/saml/metadata\"\n"
        );
        write_if_missing(&dir.join(name).join(format!("{name}.toml")), &text)?;
    }
    Ok(())
}

fn write_if_missing(path: &Path, text: &str) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Creates the demo's groups and people, once: an existing directory is left alone.
async fn seed_directory(config: &Config) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let actor = Actor::system();
    if store.users().find_by_username("alice").await?.is_some() {
        store.close().await;
        return Ok(());
    }
    for name in GROUPS {
        if store.groups().find_by_name(name).await?.is_none() {
            store.groups().create(&actor, NewGroup::new(name)).await?;
        }
    }
    for p in &PEOPLE {
        let mut new = NewUser::new(p.username, format!("{}@example.com", p.username));
        new.given_name = Some(p.given.into());
        new.family_name = Some(p.family.into());
        new.display_name = Some(format!("{} {}", p.given, p.family));
        new.attributes.insert(
            "department".into(),
            AttributeValue::One(p.department.into()),
        );
        new.password = Some(Password::new(password_of(p.username)));
        let user = store.users().create(&actor, new).await?;
        for g in p.groups {
            let group = store.groups().lookup(g).await?;
            store.groups().add_member(&actor, group.id, user.id).await?;
        }
        for role in p.roles {
            store
                .roles()
                .grant(&actor, *role, Holder::User(user.id))
                .await?;
        }
    }
    store.close().await;
    Ok(())
}

/// Registers the two demo applications as an admin would: from the SP metadata each one
/// serves, with its catalogue template for the attribute release; then assigns the groups
/// that may use it, and makes the helpdesk require a second factor. Already registered
/// applications are left alone.
async fn register_apps(config: &Config) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let actor = Actor::system();
    for (template, groups) in ASSIGNMENTS {
        let new = demo_application(template).await?;
        if store
            .apps()
            .find_by_entity_id(&new.entity_id)
            .await?
            .is_some()
        {
            continue;
        }
        let app = store.apps().create(&actor, new).await?;
        for g in groups {
            let group = store.groups().lookup(g).await?;
            store.apps().assign(&actor, app.id, group.id).await?;
        }
        if template == MFA_APP {
            // "The helpdesk needs MFA, the wiki doesn't" (`app set --require-mfa` changes it).
            MfaPolicy::new(&store)
                .set_app(
                    &actor,
                    &app,
                    AppMfa {
                        require_mfa: true,
                        ..AppMfa::default()
                    },
                )
                .await?;
        }
    }
    store.close().await;
    Ok(())
}

/// Points the IdP's SCIM client at the wiki's `/scim/v2` under the token the wiki made
/// itself on first start: a suspension or removal in the IdP then disables the wiki account
/// within seconds, without a new login. Left as it is when already connected.
async fn connect_wiki_scim(config: &Config, dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let wiki = demo_application("latchkey-wiki").await?;
    let app = store.apps().get_by_entity_id(&wiki.entity_id).await?;
    if store.provisioning().status(app.id).await?.is_some() {
        store.close().await;
        return Ok(());
    }
    let token_file = dir.join("wiki/wiki-scim-token");
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read the wiki's SCIM token {}", token_file.display()))?;
    let kek = latchkey_idp::mfa::totp::sealing_kek(config, &latchkey_idp::config::ProcessEnv)
        .context("cannot load the key that seals SCIM tokens")?;
    store
        .provisioning()
        .connect(
            &Actor::system(),
            &kek,
            app.id,
            latchkey_idp::provisioning::NewConnection {
                base_url: format!("{WIKI_URL}/scim/v2"),
                token: zeroize::Zeroizing::new(token.trim().to_owned()),
                on_remove: latchkey_idp::provisioning::OnRemove::Deactivate,
            },
        )
        .await?;
    store.close().await;
    Ok(())
}

/// The demo application's definition from the metadata it serves, with its template's
/// attribute release and its own login page on the portal tile (so a tile click starts an
/// SP-initiated sign-in at the app, as real SPs prefer).
async fn demo_application(template: &str) -> anyhow::Result<NewApplication> {
    let (base, placeholder) = match template {
        "latchkey-wiki" => (WIKI_URL, "wiki_base_url"),
        _ => (HELPDESK_URL, "helpdesk_base_url"),
    };
    let url = format!("{base}/saml/metadata");
    let xml = latchkey_sp::fetch::fetch_metadata(&url)
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    let metadata = SpMetadata::parse(&xml, &SpMetadataOptions::new(SystemClock.now()))
        .with_context(|| format!("cannot use the metadata at {url}"))?;
    let template = catalog::get(template)?;
    let mut app = metadata.application(Some(&template));
    app.tile.login_url = template
        .login_url
        .as_ref()
        .map(|p| p.fill(&[(placeholder, base)]))
        .transpose()?;
    Ok(app)
}

#[derive(Default)]
struct Children {
    running: Vec<(String, Child)>,
}

impl Children {
    fn spawn(
        &mut self,
        exe: &Path,
        args: &[&str],
        config: &Path,
        log: &Path,
    ) -> anyhow::Result<()> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .args(args)
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start latchkey {}", args.join(" ")))?;
        self.running.push((args.join(" "), child));
        Ok(())
    }

    /// The name of a child that has exited, if any.
    fn exited(&mut self) -> Option<String> {
        for (name, child) in &mut self.running {
            if !matches!(child.try_wait(), Ok(None)) {
                return Some(format!("latchkey {name}"));
            }
        }
        None
    }

    fn stop_all(&mut self) {
        for (_, child) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.running.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn port_open(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok())
}

/// Waits up to a minute for a child to listen; on failure, points at its log.
fn wait_for(addr: &str, what: &str, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if port_open(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "{what} did not start listening on {addr}; see {}",
        log.display()
    )
}

fn print_walkthrough(dir: &Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nLatchkey demo is running (data in {dir}; Ctrl-C stops it)\n\n\
         \x20 IdP and portal   {IDP_URL}/portal\n\
         \x20 Wiki             {WIKI_URL}/        (NameID e-mail; roles from groups)\n\
         \x20 Helpdesk         {HELPDESK_URL}/    (persistent NameID; agent if department is support;\n\
         \x20                                             requires a second factor)\n\n\
         People (directory):",
        dir = dir.display()
    )?;
    for p in &PEOPLE {
        let groups = if p.groups.is_empty() {
            "no groups: no application".to_owned()
        } else {
            p.groups.join(", ")
        };
        let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
        let roles = if roles.is_empty() {
            String::new()
        } else {
            format!("; console: {}", roles.join(", "))
        };
        writeln!(
            out,
            "  {:<6} password {:<24} {groups}{roles}",
            p.username,
            password_of(p.username)
        )?;
    }
    writeln!(
        out,
        "\nTry it:\n\
         \x20 1. Open {WIKI_URL}/ and click \"Sign in\" as alice: the wiki has no users, and\n\
         \x20    creates hers from the assertion, with the editor role from wiki-editors.\n\
         \x20 2. Open {IDP_URL}/portal and click the helpdesk tile: it starts the helpdesk's own\n\
         \x20    sign-in (SP-initiated), which needs no second password; but the helpdesk\n\
         \x20    requires MFA, so the IdP asks alice to set up an authenticator app (scan the\n\
         \x20    QR code, or type the key into any TOTP app, e.g. `oathtool --totp -b KEY`),\n\
         \x20    shows her ten recovery codes once, and the helpdesk gets REFEDS MFA (its\n\
         \x20    /whoami shows authn_context_class_ref) and creates alice's account. The IdP\n\
         \x20    session now has two factors, so the wiki does not ask; next time the IdP asks\n\
         \x20    for a code after the password.\n\
         \x20 3. Make alice a wiki admin and sign in to the wiki again: her role follows.\n\
         \x20      latchkey group members add wiki-admins alice --config {cfg}\n\
         \x20    carol is in no group: the IdP refuses her with a clear page, and no app sees her.\n\
         \x20 4. Click \"Sign out\" in either app: single logout ends the IdP session and the\n\
         \x20    other app's too, and the portal asks for the password again.\n\
         \x20 5. Open {IDP_URL}/admin as alice (admin) or bob (helpdesk): the admin console.\n\
         \x20    It asks for a second factor: a code, or (bob, who has none) an authenticator app\n\
         \x20    set up on the way in.\n\
         \x20 6. Both apps also serve SCIM 2.0 ({WIKI_URL}/scim/v2, {HELPDESK_URL}/scim/v2) under\n\
         \x20    the bearer token each made itself, in {wiki_token} and\n\
         \x20    {helpdesk_token}; their /admin pages show whether a change came from a\n\
         \x20    JIT login or SCIM, e.g. after\n\
         \x20      curl -H \"Authorization: Bearer $(cat {wiki_token})\" {WIKI_URL}/scim/v2/Users\n\
         \x20    The IdP pushes to the wiki's SCIM server: `latchkey user suspend alice` disables\n\
         \x20    her wiki account (and ends her wiki session) within seconds, without a login;\n\
         \x20    its delivery state:\n\
         \x20      latchkey app scim show {WIKI_URL}/saml/metadata --config {cfg}\n\
         \nLogs: {logs}",
        cfg = dir.join("latchkey.toml").display(),
        logs = dir.join("logs").display(),
        wiki_token = dir.join("wiki/wiki-scim-token").display(),
        helpdesk_token = dir.join("helpdesk/helpdesk-scim-token").display(),
    )?;
    Ok(())
}
