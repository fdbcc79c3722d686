//! The configuration reference: one table per file, rendered to `docs/configuration.md`.
//!
//! The descriptions live here, in one place, because they are written for operators and the
//! doc comments on the types are written for programmers. The tests keep the table honest:
//! every key the types accept is on it and nothing else (the types are asked through serde,
//! which names the valid keys when it meets an unknown one), every literal default is the
//! one the types apply, the environment variables are exactly those the loader reads, and the
//! checked-in page is what [`render`] prints. `LATCHKEY_BLESS=1 cargo test -p latchkey
//! reference` rewrites the page after a change.

use std::fmt::Write as _;

/// What a key defaults to.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    /// A TOML literal; the tests check that writing it changes nothing.
    Literal(&'static str),
    /// Unset, and what that means.
    Unset(&'static str),
    /// The file is refused without it.
    Required,
}

/// One key of a configuration file.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Dotted path from the file's root: `server.listen`.
    pub path: &'static str,
    /// The TOML type; `table` for a section.
    pub ty: &'static str,
    /// Its default.
    pub default: Fallback,
    /// Environment variables that override it, first match wins.
    pub env: &'static [&'static str],
    /// What it does, for an operator.
    pub doc: &'static str,
}

/// The default of a section that may be left out.
const EACH: &str = "each key at its default";

/// A table whose keys are documented elsewhere (the JIT contract has its own reference).
pub const OPAQUE: &str = "table (see below)";

const fn key(path: &'static str, ty: &'static str, default: Fallback, doc: &'static str) -> Key {
    Key {
        path,
        ty,
        default,
        env: &[],
        doc,
    }
}

const fn env(mut key: Key, env: &'static [&'static str]) -> Key {
    key.env = env;
    key
}

use Fallback::{Literal, Required, Unset};

/// `latchkey.toml`: the IdP (`latchkey serve`, the admin commands).
pub const LATCHKEY_TOML: &[Key] = &[
    env(
        key(
            "data_dir",
            "path",
            Literal("\"latchkey-data\""),
            "Local state: the SQLite file and, with `[keys] store = \"files\"`, the signing keys.",
        ),
        &["LATCHKEY_DATA_DIR"],
    ),
    key(
        "database",
        "table",
        Unset(EACH),
        "Which database holds the directory, sessions and audit log.",
    ),
    env(
        key(
            "database.url",
            "string",
            Unset("SQLite file `<data_dir>/latchkey.db`"),
            "`sqlite://` or `postgres://` URL. A PostgreSQL lets many nodes share one state. \
             Secret: `config check` masks its password.",
        ),
        &["LATCHKEY_DATABASE_URL", "DATABASE_URL"],
    ),
    key(
        "database.max_connections",
        "integer",
        Unset("10 for PostgreSQL, 4 for SQLite"),
        "Most pooled connections per process.",
    ),
    key(
        "password",
        "table",
        Unset(EACH),
        "Argon2id for new password hashes (OWASP's minimum by default), and the hashing pool.",
    ),
    key(
        "password.memory_kib",
        "integer",
        Literal("19456"),
        "Memory cost in KiB; each hash in progress holds this much.",
    ),
    key(
        "password.iterations",
        "integer",
        Literal("2"),
        "Number of passes.",
    ),
    key(
        "password.parallelism",
        "integer",
        Literal("1"),
        "Degree of parallelism.",
    ),
    key(
        "password.max_concurrent",
        "integer",
        Literal("0"),
        "Most hashes computed at once on this node (0: one per CPU core); this bounds the \
         memory sign-ins can take to `max_concurrent` x `memory_kib`.",
    ),
    key(
        "password.max_queued",
        "integer",
        Literal("0"),
        "Most requests waiting for a hashing slot, each at most 5 s (0: four per slot); past \
         it the answer is 503 with `Retry-After` at once.",
    ),
    key(
        "password.min_length",
        "integer",
        Literal("12"),
        "The fewest characters a new password may have (8 to 1024). Checked wherever a \
         password is set (`user add`, `user passwd`, the API, invitations, resets), never at \
         sign-in; the 10,000 most common passwords are refused at any length.",
    ),
    key(
        "server",
        "table",
        Unset(EACH),
        "The SSO server, `latchkey serve`.",
    ),
    env(
        key(
            "server.listen",
            "string",
            Literal("\"127.0.0.1:8080\""),
            "Socket address to bind; `serve --listen` overrides both.",
        ),
        &["LATCHKEY_LISTEN"],
    ),
    env(
        key(
            "server.base_url",
            "string",
            Literal("\"http://127.0.0.1:8080\""),
            "How browsers and SPs reach the IdP: `scheme://host[:port]`, no path. https turns \
             on HSTS and `__Host-` cookies.",
        ),
        &["LATCHKEY_BASE_URL"],
    ),
    key(
        "server.entity_id",
        "string",
        Unset("`<base_url>/saml/metadata`"),
        "The IdP's SAML entity ID.",
    ),
    env(
        key(
            "server.cookie_secure",
            "boolean",
            Literal("true"),
            "Cookies carry `Secure`; `false` is allowed only for a plain-http loopback \
             `base_url` (local development).",
        ),
        &["LATCHKEY_COOKIE_SECURE"],
    ),
    key(
        "server.session_idle_minutes",
        "integer",
        Literal("30"),
        "A session unused this long ends; at most `session_absolute_minutes`.",
    ),
    key(
        "server.session_absolute_minutes",
        "integer",
        Literal("480"),
        "A session ends this long after sign-in, however busy.",
    ),
    key(
        "server.assertion_validity_seconds",
        "integer",
        Literal("300"),
        "How long an assertion may be delivered and accepted (30-3600).",
    ),
    key(
        "server.require_signed_requests",
        "boolean",
        Literal("false"),
        "Refuse unsigned AuthnRequests from every application (an application with a \
         signing certificate must always sign), and unsigned LogoutRequests whatever an \
         application's `allow_unsigned_logout`.",
    ),
    key(
        "server.trust_forwarded_for",
        "boolean",
        Literal("false"),
        "Take the client address (throttling, `/metrics` access, audit) from the last \
         `X-Forwarded-For` hop; only behind a proxy that sets it.",
    ),
    key(
        "server.key_algorithm",
        "string",
        Literal("\"rsa2048\""),
        "Algorithm of the signing key made at first start: `rsa2048` or `ecdsa_p256`.",
    ),
    key(
        "server.metrics_allow",
        "array of strings",
        Literal("[\"127.0.0.0/8\", \"::1\"]"),
        "Addresses or CIDR networks that may read `/metrics` without the token.",
    ),
    env(
        key(
            "server.metrics_token",
            "string",
            Unset("no token"),
            "`Authorization: Bearer <token>` opens `/metrics` from anywhere. Secret: `config \
             check` masks it.",
        ),
        &["LATCHKEY_METRICS_TOKEN"],
    ),
    key(
        "server.parked_per_network",
        "integer",
        Literal("1000"),
        "Sign-in requests that may wait while their user signs in, per client network (an IPv6 \
         client counts as its /64, and the /64s of one /48 may hold five times this together) \
         or signed-in user; past it `429 WEB-THROTTLED`. Raise it for a large office behind one \
         address.",
    ),
    key(
        "server.parked_max",
        "integer",
        Literal("50000"),
        "Sign-in requests from client networks that may wait in all (each under 2 KiB); past \
         it `503 WEB-BUSY`. A signed-in user's own (a sign-in waiting for their second factor, \
         their single logout) count only towards `parked_per_network`. At least \
         `parked_per_network`.",
    ),
    key(
        "server.bad_tokens_per_network",
        "integer",
        Literal("10"),
        "Wrong bearer tokens (admin API, SCIM) one client network may present within \
         `bad_tokens_window_seconds` (an IPv6 client counts as its /64, and the /64s of one /48 \
         may present five times this together); past it the network's bearer-token requests \
         are answered `429` with `Retry-After`, without their token being looked up, until the \
         window has passed. A right token gives its place back. Counted in \
         `latchkey_bearer_tokens_refused_total`.",
    ),
    key(
        "server.bad_tokens_window_seconds",
        "integer",
        Literal("300"),
        "The window of `bad_tokens_per_network`, and how long its refusal lasts: 1-3600.",
    ),
    key(
        "keys",
        "table",
        Unset(EACH),
        "Where the IdP's signing keys live.",
    ),
    env(
        key(
            "keys.store",
            "string",
            Literal("\"files\""),
            "`files`: PEM files under `<data_dir>/keys`, per node. `database`: rows sealed \
             under the key-encryption key, shared by every node on the same database.",
        ),
        &["LATCHKEY_KEY_STORE"],
    ),
    env(
        key(
            "keys.kek_file",
            "path",
            Unset("none; `$LATCHKEY_KEK` may carry the key itself"),
            "The key-encryption key for `store = \"database\"` (32 random bytes, base64, mode \
             0600, made by `latchkey key new-kek FILE`). Never in the database by design.",
        ),
        &["LATCHKEY_KEK_FILE"],
    ),
    key(
        "keys.refresh_seconds",
        "integer",
        Literal("30"),
        "How soon a rollover done on another node shows here (database store; at least 1).",
    ),
    key(
        "keys.metadata_cache_seconds",
        "integer",
        Literal("86400"),
        "The `cacheDuration` of the published IdP metadata; `key activate` refuses until the next \
         key has been published this long (1 to 604800: the metadata's 7-day validity).",
    ),
    key(
        "mfa",
        "table",
        Unset(EACH),
        "Second factors (TOTP, recovery codes).",
    ),
    key(
        "mfa.required",
        "boolean",
        Literal("false"),
        "Every sign-in, to the portal and to every application, needs a second factor; a user \
         without one enrols during sign-in. Applications (`app set APP --require-mfa true`), \
         groups (`group set GROUP --require-mfa true`) and users (`user mfa require USER`) \
         can require one when this is false.",
    ),
    key(
        "console",
        "table",
        Unset(EACH),
        "The admin console under `/admin`.",
    ),
    key(
        "console.require_mfa",
        "boolean",
        Literal("true"),
        "The console needs a second factor in the session, whatever `[mfa]` says: a user \
         with a console role who signed in with a password alone is asked for a code (or \
         sets up an authenticator app first) before any `/admin` page. Turn off only where \
         the console is reached through another strong sign-in.",
    ),
    key(
        "audit",
        "table",
        Unset(EACH),
        "How long the audit log keeps events.",
    ),
    key(
        "audit.retain_days",
        "integer",
        Literal("0"),
        "Events older than this many days are deleted by `latchkey serve` (every ten minutes; \
         each sweep is itself an audit event `audit.purged`); 0 keeps every event (0 to \
         36500). Export what you must keep longer first (`latchkey audit --json`).",
    ),
    key(
        "enrollment",
        "table",
        Unset(EACH),
        "Invitation and password-reset links.",
    ),
    key(
        "enrollment.invitation_hours",
        "integer",
        Literal("72"),
        "How long a `latchkey user invite` link works unless `--expires` says otherwise (1 \
         to 720). A newer invitation for the same user replaces the older one.",
    ),
    key(
        "enrollment.reset_minutes",
        "integer",
        Literal("30"),
        "How long a password-reset link works (5 to 1440).",
    ),
    key(
        "smtp",
        "table",
        Unset("no mail: `user invite` prints the link"),
        "Where invitation and password-reset mail goes.",
    ),
    key(
        "smtp.host",
        "string",
        Unset("none (no mail)"),
        "The mail server. Mail is sent off the request path, from a queue, with 3 attempts.",
    ),
    key(
        "smtp.port",
        "integer",
        Unset("587 for `starttls`, 465 for `tls`, 25 for `none`"),
        "The mail server's port.",
    ),
    key(
        "smtp.security",
        "string",
        Literal("\"starttls\""),
        "`starttls` (must succeed), `tls` (from the first byte) or `none`, which is refused \
         unless `host` is a loopback address (a local relay or a test sink).",
    ),
    key(
        "smtp.username",
        "string",
        Unset("none (no authentication)"),
        "The user to authenticate as.",
    ),
    env(
        key(
            "smtp.password",
            "string",
            Unset("none"),
            "Its password; `latchkey config check` shows it as `***`.",
        ),
        &["LATCHKEY_SMTP_PASSWORD"],
    ),
    key(
        "smtp.from",
        "string",
        Unset("none; required with `host`"),
        "The sender: an address or `Name <address>`.",
    ),
    key(
        "provisioning",
        "table",
        Unset(EACH),
        "The SCIM client: how `latchkey serve` delivers the outbox to applications connected \
         with `latchkey app scim set`.",
    ),
    key(
        "provisioning.poll_seconds",
        "integer",
        Literal("2"),
        "How often the delivery worker looks for rows it was not woken for (written by \
         another node or a CLI command), 1 to 300. A change made through this node's console \
         or API wakes it at once.",
    ),
    key(
        "provisioning.batch",
        "integer",
        Literal("32"),
        "Outbox rows taken, and SCIM requests in flight, at once (1 to 500).",
    ),
    key(
        "provisioning.request_timeout_seconds",
        "integer",
        Literal("10"),
        "The limit of one SCIM request, connection included (1 to 120).",
    ),
    key(
        "provisioning.max_backoff_seconds",
        "integer",
        Literal("600"),
        "Failed deliveries are retried after 2 s, 4 s, 8 s, ... up to this (10 to 86400). \
         Nothing is dropped: a row waits until its application answers.",
    ),
    key(
        "provisioning.sync_interval_minutes",
        "integer",
        Literal("0"),
        "Reconcile every connected application this often (as `latchkey app sync`); 0 turns \
         the schedule off.",
    ),
    key(
        "provisioning.stuck_after_seconds",
        "integer",
        Literal("900"),
        "`/readyz` says the outbox is stuck when its oldest row is older than this; 0 turns \
         the check off.",
    ),
    env(
        key(
            "provisioning.removal_overdue_seconds",
            "integer",
            Literal("3600"),
            "`/readyz` says the node is degraded (`checks.scim_removals`; still ready: it can \
             sign people in) when a removal has waited longer than this to reach its \
             application: someone keeps access there the directory took away. 0 turns the \
             check off. `latchkey_scim_oldest_removal_age_seconds` is its gauge.",
        ),
        &["LATCHKEY_SCIM_REMOVAL_OVERDUE_SECONDS"],
    ),
    key(
        "webauthn",
        "table",
        Unset(EACH),
        "Passkeys and security keys (WebAuthn): who the IdP is to authenticators.",
    ),
    key(
        "webauthn.rp_id",
        "string",
        Unset("the host of `server.base_url`"),
        "The RP ID credentials are bound to: the origin's host or a registrable parent of it \
         (`example.org` for `idp.example.org`). Changing it orphans every enrolled credential.",
    ),
    key(
        "webauthn.origin",
        "string",
        Unset("`server.base_url`"),
        "The one origin (`https://host[:port]`) passkey sign-ins are accepted from.",
    ),
    key(
        "webauthn.rp_name",
        "string",
        Literal("\"Latchkey\""),
        "The name authenticators show when a credential is created.",
    ),
];

/// Variables read with no key of their own.
pub const ENVIRONMENT_ONLY: &[(&str, &str)] = &[
    (
        "LATCHKEY_CONFIG",
        "The configuration file, when `--config` is not given.",
    ),
    (
        "LATCHKEY_KEK",
        "The key-encryption key itself (base64); takes precedence over `[keys] kek_file`. \
         Secret: `config check` says only whether it is set.",
    ),
];

/// A demo application's file (`latchkey demo-app wiki|helpdesk --config FILE`).
pub const DEMO_APP_TOML: &[Key] = &[
    key(
        "listen",
        "string",
        Required,
        "Socket address to bind, e.g. `\"127.0.0.1:7101\"`.",
    ),
    key(
        "database",
        "path",
        Required,
        "The app's SQLite file, created if missing. Its signing key is made beside it when \
         there is no `[sp.key]`.",
    ),
    key(
        "secure_cookies",
        "boolean",
        Unset("true when `sp.acs_url` is https"),
        "The session cookie carries `Secure`.",
    ),
    key(
        "trust_forwarded_for",
        "boolean",
        Literal("false"),
        "Count logins started per the last `X-Forwarded-For` hop instead of the socket peer; \
         only behind a reverse proxy that appends it.",
    ),
    key("sp", "table", Required, "The SP toolkit's settings."),
    key(
        "sp.entity_id",
        "string",
        Required,
        "The app's entity ID: the audience assertions must name.",
    ),
    key(
        "sp.acs_url",
        "string",
        Required,
        "The AssertionConsumerService URL (HTTP-POST), an http(s) URL.",
    ),
    key(
        "sp.slo_url",
        "string",
        Unset("`/saml/slo` beside a `.../saml/acs` ACS URL"),
        "The SingleLogoutService URL, published in the app's metadata.",
    ),
    key(
        "sp.clock_skew_seconds",
        "integer",
        Literal("60"),
        "Clock difference with the IdP allowed (clamped to 300).",
    ),
    key(
        "sp.signature_algorithms",
        "array of strings",
        Unset("RSA and ECDSA with SHA-256/384/512"),
        "Accepted signature algorithms, by short name (`rsa-sha256`) or URI; `rsa-sha1` opts \
         in to SHA-1.",
    ),
    key(
        "sp.digest_algorithms",
        "array of strings",
        Unset("SHA-256/384/512"),
        "Accepted digest algorithms, by short name (`sha256`) or URI.",
    ),
    key(
        "sp.allow_idp_initiated",
        "boolean",
        Literal("false"),
        "Accept logins the app did not start (responses answering no request).",
    ),
    key(
        "sp.request_lifetime_seconds",
        "integer",
        Literal("600"),
        "How long a started login may take at the IdP.",
    ),
    key(
        "sp.name_id_format",
        "string",
        Unset("none asked for: the IdP decides"),
        "The NameID format asked for in AuthnRequests.",
    ),
    key(
        "sp.idp",
        "table",
        Required,
        "Where the IdP's metadata comes from: `metadata_file` or `metadata_url`.",
    ),
    key(
        "sp.idp.metadata_file",
        "path",
        Unset("none"),
        "A metadata file the administrator placed.",
    ),
    key(
        "sp.idp.metadata_url",
        "string",
        Unset("none"),
        "A metadata URL, fetched at start and refreshed: `https://`, or `http://` only to this \
         machine (`localhost`, `127.0.0.0/8`, `[::1]`), redirects included.",
    ),
    key(
        "sp.idp.entity_id",
        "string",
        Unset("the only IdP in the metadata"),
        "Which IdP to trust when the metadata holds several.",
    ),
    key(
        "sp.idp.refresh_seconds",
        "integer",
        Literal("3600"),
        "Metadata refresh interval when the metadata sets no `cacheDuration`.",
    ),
    key(
        "sp.idp.refetch_seconds",
        "integer",
        Literal("60"),
        "With `metadata_url`: the fewest seconds between two re-fetches forced by a Response \
         whose signature matches no trusted key (the IdP may have just rolled its key).",
    ),
    key(
        "sp.key",
        "table",
        Unset("a P-256 key made beside `database` on first start"),
        "The app's signing key (AuthnRequests, logout messages), published in its metadata.",
    ),
    key(
        "sp.key.private_key_file",
        "path",
        Required,
        "PEM private key (PKCS#8, PKCS#1 or SEC1).",
    ),
    key(
        "sp.key.certificate_file",
        "path",
        Required,
        "PEM certificate of that key.",
    ),
    key(
        "sp.key.sign_requests",
        "boolean",
        Literal("true"),
        "Sign AuthnRequests.",
    ),
    key(
        "sp.encryption",
        "table",
        Unset("encrypted assertions are refused"),
        "The app's decryption key, to accept encrypted assertions.",
    ),
    key(
        "sp.encryption.private_key_file",
        "path",
        Required,
        "PEM RSA private key, 2048 bits or more.",
    ),
    key(
        "sp.encryption.certificate_file",
        "path",
        Required,
        "PEM certificate of that key, published with `use=\"encryption\"`.",
    ),
    key(
        "sp.encryption.previous_private_key_files",
        "array of paths",
        Literal("[]"),
        "Older keys still tried during a rollover.",
    ),
    key(
        "sp.encryption.allow_cbc",
        "boolean",
        Literal("false"),
        "Also accept AES-CBC content encryption, for an IdP without GCM: a risk (no \
         integrity; refusal timing differs between bad padding and a bad signature).",
    ),
    key(
        "sp.provisioning",
        OPAQUE,
        Unset("the app's built-in contract"),
        "The JIT provisioning contract: `latchkey_sp::jit::Contract` (crates/sp/src/jit/contract.rs).",
    ),
    key(
        "sp.scim",
        "table",
        Unset("a bearer token made beside `database` on first start (`<database>-scim-token`)"),
        "The SCIM 2.0 server at `/scim/v2` (`latchkey_sp::scim`): users and groups written \
         through the provisioning contract.",
    ),
    key(
        "sp.scim.tokens",
        "array of tables",
        Required,
        "The bearer tokens, each `{ name = \"...\", sha256 = \"<hex SHA-256 of the token>\" }`; \
         the name is audited as the actor of its writes, the token itself is never stored.",
    ),
    key(
        "sp.scim.base_url",
        "string",
        Unset("`/scim/v2` beside `sp.acs_url`"),
        "The SCIM base URL, for `meta.location` and `Location`.",
    ),
    key(
        "sp.scim.idp_entity_id",
        "string",
        Unset("the `[sp.idp]` entity ID"),
        "The IdP whose identities SCIM writes, so that its logins find the same accounts.",
    ),
    key(
        "sp.scim.name_id",
        "string",
        Literal("\"userName\""),
        "The SCIM path holding the NameID value accounts are keyed by (`emails` is the primary \
         address, `externalId` suits a persistent NameID). The demo wiki uses `emails`, the \
         helpdesk `externalId`.",
    ),
    key(
        "sp.scim.attributes",
        "table of strings",
        Unset("the defaults of `latchkey_sp::scim::service::DEFAULT_ATTRIBUTES`"),
        "SAML attribute name = SCIM path: what the contract reads for each attribute, over the \
         defaults (`email` from `emails`, `groups` from the SCIM groups' names, ...).",
    ),
    key(
        "sp.audit",
        "table",
        Unset(EACH),
        "How long the app's audit log keeps events, and whether it records unchanged logins.",
    ),
    key(
        "sp.audit.retain_days",
        "integer",
        Literal("0"),
        "Events older than this many days are deleted by the app (every ten minutes, in \
         batches of 1,000 a transaction; each purge that deletes any is itself an audit event \
         `audit.purged`); 0 keeps every event (0 to 36500). A toolkit application runs \
         `SqlAccountStore::apply_audit_retention` itself.",
    ),
    key(
        "sp.audit.unchanged_logins",
        "string",
        Literal("\"record\""),
        "`\"record\"`: each returning login that changed nothing is an audit event \
         (`jit.unchanged`). `\"log_only\"`: such a login is only the app's `JIT login` log line \
         and writes nothing but its replay entry (the IdP's audit records each assertion as \
         `sso.assertion`); creates, updates, links, refusals and rejected responses are recorded \
         either way. A toolkit application sets `JitEngine::unchanged_logins` itself.",
    ),
];

/// The page, as `docs/configuration.md` holds it.
pub fn render() -> String {
    let mut page = String::from(
        "<!-- Generated by `latchkey config reference` from crates/cli/src/config_cmd/reference.rs; \
         `LATCHKEY_BLESS=1 cargo test -p latchkey reference` rewrites it. Do not edit. -->\n\
         # Configuration reference\n\n\
         Every key of the two configuration files, its type, its default, the environment \
         variables that override it and what it does. `latchkey config check [FILE]` validates \
         a file (an unknown or misspelt key is named with the nearest valid one) and prints the \
         effective configuration with its secrets masked.\n\n\
         ## `latchkey.toml`\n\n\
         Read by `latchkey serve` and the admin commands: `--config FILE`, else \
         `$LATCHKEY_CONFIG`, else `./latchkey.toml` when it exists, else the built-in defaults. \
         Environment variables override the file. Relative paths are resolved against the \
         file's directory. Unknown keys are refused.\n",
    );
    section_tables(&mut page, LATCHKEY_TOML);
    page.push_str("\n### Environment only\n\n| variable | what it does |\n|---|---|\n");
    for (name, doc) in ENVIRONMENT_ONLY {
        let _ = writeln!(page, "| `{name}` | {doc} |");
    }
    page.push_str(
        "\nLogging is set by the environment alone: `RUST_LOG` filters, \
         `LATCHKEY_LOG_FORMAT=json` writes JSON lines.\n\n\
         ## A demo application's file\n\n\
         Read by `latchkey demo-app wiki|helpdesk --config FILE` (and written by `latchkey demo`). \
         No environment overrides. Relative paths are resolved against the file's directory. \
         Unknown keys are refused. A file of the SP toolkit alone (`latchkey sp plan --config`) \
         holds the keys of `[sp]` at its top level.\n",
    );
    section_tables(&mut page, DEMO_APP_TOML);
    page
}

/// One Markdown table per section, the top level first.
fn section_tables(page: &mut String, keys: &[Key]) {
    let mut sections = vec![""];
    sections.extend(keys.iter().filter(|k| k.ty == "table").map(|k| k.path));
    for section in sections {
        let title = if section.is_empty() {
            "top level".to_string()
        } else {
            format!("`[{section}]`")
        };
        let _ = write!(
            page,
            "\n### {title}\n\n| key | type | default | environment | what it does |\n\
             |---|---|---|---|---|\n"
        );
        for key in keys.iter().filter(|k| parent(k.path) == section) {
            let name = key.path.rsplit('.').next().unwrap_or(key.path);
            let default = match key.default {
                Literal(value) => format!("`{value}`"),
                Unset(meaning) => format!("unset: {meaning}"),
                Required => "required".into(),
            };
            let env = key
                .env
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                page,
                "| `{name}` | {} | {default} | {env} | {} |",
                key.ty, key.doc
            );
        }
    }
}

/// `server` for `server.listen`, the empty string for a top-level key.
fn parent(path: &str) -> &str {
    path.rsplit_once('.').map(|(p, _)| p).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::path::Path;

    use latchkey_demo_apps::DemoConfig;
    use latchkey_idp::Config;
    use latchkey_idp::config::ServerSettings;
    use latchkey_idp::config::{Environment, unknown_key};
    use latchkey_idp::keys::Kek;

    use super::*;

    /// Parses a file of one kind into its `Debug` text (what the program would run with).
    type Parse = fn(&str) -> Result<String, String>;

    fn parse_latchkey(text: &str) -> Result<String, String> {
        Config::from_toml(text).map(|c| format!("{c:?}"))
    }

    fn parse_demo(text: &str) -> Result<String, String> {
        DemoConfig::from_toml(text, Path::new("/base"))
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }

    /// The smallest valid demo file that has every optional section with keys of its own.
    const DEMO_MINIMAL: &[(&str, &str)] = &[
        ("", "listen = \"127.0.0.1:7101\""),
        ("", "database = \"wiki.sqlite\""),
        ("sp", "entity_id = \"http://127.0.0.1:7101/saml/metadata\""),
        ("sp", "acs_url = \"http://127.0.0.1:7101/saml/acs\""),
        ("sp.idp", "metadata_file = \"idp.xml\""),
        ("sp.key", "private_key_file = \"k.pem\""),
        ("sp.key", "certificate_file = \"c.pem\""),
        ("sp.encryption", "private_key_file = \"ek.pem\""),
        ("sp.encryption", "certificate_file = \"ec.pem\""),
        ("sp.scim", "tokens = []"),
    ];

    /// A TOML document from `(table, line)` pairs, top-level lines first.
    fn document(lines: &[(&str, &str)]) -> String {
        let mut tables: Vec<&str> = Vec::new();
        for (table, _) in lines {
            if !tables.contains(table) {
                tables.push(table);
            }
        }
        tables.sort_by_key(|t| !t.is_empty());
        let mut text = String::new();
        for table in tables {
            if !table.is_empty() {
                text.push_str(&format!("[{table}]\n"));
            }
            for (_, line) in lines.iter().filter(|(t, _)| *t == table) {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// The keys the types accept in `table`, as serde names them when it meets an unknown one.
    fn accepted(parse: Parse, base: &[(&str, &str)], table: &str) -> BTreeSet<String> {
        let mut lines = base.to_vec();
        lines.push((table, "zz_not_a_key = 0"));
        let err = parse(&document(&lines)).expect_err("an unknown key must be refused");
        let at = err
            .find("unknown field `")
            .unwrap_or_else(|| panic!("[{table}]: not an unknown-field error: {err}"));
        let message = err[at..].lines().next().unwrap_or_default();
        let (unknown, expected) = unknown_key(message).unwrap();
        assert_eq!(unknown, "zz_not_a_key");
        expected.into_iter().map(String::from).collect()
    }

    fn check_keys_match_the_types(keys: &[Key], parse: Parse, base: &[(&str, &str)]) {
        let mut tables = vec![""];
        tables.extend(keys.iter().filter(|k| k.ty == "table").map(|k| k.path));
        for table in tables {
            let documented: BTreeSet<String> = keys
                .iter()
                .filter(|k| parent(k.path) == table)
                .map(|k| k.path.rsplit('.').next().unwrap_or(k.path).to_string())
                .collect();
            assert_eq!(
                accepted(parse, base, table),
                documented,
                "[{table}]: the reference and the types disagree"
            );
        }
    }

    fn check_literal_defaults(keys: &[Key], parse: Parse, base: &[(&str, &str)]) {
        let implicit = parse(&document(base)).unwrap();
        for key in keys {
            let Literal(value) = key.default else {
                continue;
            };
            let (table, name) = key.path.rsplit_once('.').unwrap_or(("", key.path));
            let line = format!("{name} = {value}");
            let mut lines = base.to_vec();
            lines.push((table, &line));
            let text = document(&lines);
            let explicit = parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", key.path));
            assert_eq!(
                explicit, implicit,
                "{}: the documented default {value} is not the default",
                key.path
            );
        }
    }

    #[test]
    fn every_latchkey_toml_key_is_documented_and_nothing_else() {
        check_keys_match_the_types(LATCHKEY_TOML, parse_latchkey, &[]);
    }

    #[test]
    fn every_demo_app_key_is_documented_and_nothing_else() {
        check_keys_match_the_types(DEMO_APP_TOML, parse_demo, DEMO_MINIMAL);
    }

    #[test]
    fn documented_defaults_are_the_defaults() {
        check_literal_defaults(LATCHKEY_TOML, parse_latchkey, &[]);
        check_literal_defaults(DEMO_APP_TOML, parse_demo, DEMO_MINIMAL);
    }

    #[test]
    fn a_wrong_default_would_be_caught() {
        let wrong = [key(
            "server.session_idle_minutes",
            "integer",
            Literal("31"),
            "",
        )];
        let caught = std::panic::catch_unwind(|| {
            check_literal_defaults(&wrong, parse_latchkey, &[]);
        });
        assert!(caught.is_err());
    }

    /// Records every variable the loader asks for.
    #[derive(Default)]
    struct Recorder(RefCell<BTreeSet<String>>);

    impl Environment for Recorder {
        fn var(&self, name: &str) -> Option<String> {
            self.0.borrow_mut().insert(name.to_string());
            None
        }
    }

    #[test]
    fn documented_environment_variables_are_the_ones_read() {
        let env = Recorder::default();
        let config = Config::load_with(None, &env).unwrap();
        ServerSettings::resolve(&config, &env).unwrap();
        // No key anywhere, so it fails; what matters is the variable it looked at first.
        assert!(Kek::resolve(&config.keys, &env).is_err());
        let documented: BTreeSet<String> = LATCHKEY_TOML
            .iter()
            .flat_map(|k| k.env.iter())
            .chain(ENVIRONMENT_ONLY.iter().map(|(name, _)| name))
            .map(|name| name.to_string())
            .collect();
        assert_eq!(env.0.into_inner(), documented);
    }

    #[test]
    fn the_page_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let page = render();
        if std::env::var_os("LATCHKEY_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &page).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == page,
            "docs/configuration.md is stale: run LATCHKEY_BLESS=1 cargo test -p latchkey reference"
        );
    }
}
