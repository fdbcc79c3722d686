//! The oracle: Shibboleth SP 3 (`shibd` and Apache's `mod_shib`), as private instances in
//! a directory the test owns. Its configuration is Debian's `/etc/shibboleth`, copied and
//! edited only where any administrator must (entity IDs, the IdP's metadata, the attribute
//! map, keys) plus what plain HTTP on loopback forces; each edit says why. Nothing of
//! `/etc/shibboleth`, `/etc/apache2` or the system services is changed or used at run time.
//!
//! Layout under the directory (the SP's path resolver appends its package name, hence the
//! `shibboleth/` level): `etc/shibboleth/` the configuration (`SHIBSP_CFGDIR=etc`),
//! `run/shibboleth/shibd.sock` the socket between Apache and shibd (`SHIBSP_RUNDIR`),
//! `log/` shibd.log, transaction.log, native.log (mod_shib) and Apache's error.log.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::apache::{self, Apache, Daemon};

/// What Debian ships; the test fails, naming them, when they are missing.
pub const PACKAGES: &str = "apache2 libapache2-mod-shib shibboleth-sp-utils";
const SHIBD: &str = "/usr/sbin/shibd";
const MOD_SHIB: &str = "/usr/lib/apache2/modules/mod_shib.so";
const DEFAULTS: &str = "/etc/shibboleth";

pub struct Shibboleth {
    /// Apache's base URL, `http://localhost:PORT`.
    pub base: String,
    /// The SP's entity ID.
    pub entity_id: String,
    pub dir: PathBuf,
    // Apache first: it is stopped before the shibd it talks to.
    apache: Option<Apache>,
    shibd: Option<Daemon>,
}

/// Fails the test, naming the Debian packages, if a piece of the oracle is missing.
pub fn require_installed() {
    for path in [apache::APACHE, SHIBD, MOD_SHIB, DEFAULTS] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the Shibboleth interop test needs the Debian packages \
             {PACKAGES} (scripts/test installs them: apt-get install {PACKAGES})"
        );
    }
}

/// `text` with `from` replaced by `to`; `from` must be there, so a changed default fails
/// loudly instead of being silently left as it was.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the default configuration no longer contains {from:?}"
    );
    text.replacen(from, to, 1)
}

impl Shibboleth {
    /// Writes the configuration, with `idp_metadata` (the IdP's own metadata document) as
    /// the SP's one metadata source and `idp_entity_id` as its default IdP, and starts shibd
    /// and Apache on `port`.
    pub fn start(dir: &Path, port: u16, idp_entity_id: &str, idp_metadata: &str) -> Shibboleth {
        require_installed();
        let base = format!("http://localhost:{port}");
        let entity_id = format!("{base}/shibboleth");
        let etc = dir.join("etc/shibboleth");
        let (run, log, docroot) = (dir.join("run"), dir.join("log"), dir.join("htdocs"));
        apache::prepare(dir);
        for d in [&etc, &run.join("shibboleth"), &dir.join("cache/shibboleth")] {
            std::fs::create_dir_all(d).unwrap();
        }
        for entry in std::fs::read_dir(DEFAULTS).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), etc.join(entry.file_name())).unwrap();
            }
        }

        // The SP's signing and encryption keys, as shib-keygen would make them (an admin
        // must: the package ships none).
        for usage in ["signing", "encrypt"] {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
            let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
                .unwrap()
                .self_signed(&pair)
                .unwrap();
            let key = etc.join(format!("sp-{usage}-key.pem"));
            std::fs::write(&key, pair.serialize_pem()).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::write(etc.join(format!("sp-{usage}-cert.pem")), cert.pem()).unwrap();
        }
        std::fs::write(etc.join("idp-metadata.xml"), idp_metadata).unwrap();

        let config = std::fs::read_to_string(etc.join("shibboleth2.xml")).unwrap();
        // Required of every admin: the SP's own entity ID.
        let config = edit(
            &config,
            "entityID=\"https://sp.example.org/shibboleth\"",
            &format!("entityID=\"{entity_id}\""),
        );
        // Required: the IdP to send people to.
        let config = edit(
            &config,
            "entityID=\"https://idp.example.org/idp/shibboleth\"",
            &format!("entityID=\"{idp_entity_id}\""),
        );
        // Plain HTTP on loopback (no TLS in this test): the defaults handlerSSL="true" and
        // cookieProps="https" would refuse every handler request made over http and mark the
        // session cookie Secure. Both are transport settings, not SAML ones; shibd warns
        // about them at start (allow-listed below for that reason).
        let config = edit(
            &config,
            "handlerSSL=\"true\" cookieProps=\"https\"",
            "handlerSSL=\"false\" cookieProps=\"http\"",
        );
        // Required: where the IdP's metadata is (the IdP's own /saml/metadata, saved).
        let config = edit(
            &config,
            "<!-- Map to extract attributes from SAML assertions. -->",
            "<MetadataProvider type=\"XML\" validate=\"true\" path=\"idp-metadata.xml\"/>\n\
             <!-- Map to extract attributes from SAML assertions. -->",
        );
        std::fs::write(etc.join("shibboleth2.xml"), config).unwrap();

        // Required: the attribute map. Debian's ships the LDAP attributes commented out; these
        // are the standard names (SAML 2.0 X.500/LDAP profile) Latchkey's generic-saml
        // template releases.
        let map = std::fs::read_to_string(etc.join("attribute-map.xml")).unwrap();
        let map = edit(
            &map,
            "</Attributes>",
            "    <Attribute name=\"urn:oid:0.9.2342.19200300.100.1.3\" id=\"mail\"/>\n\
             <Attribute name=\"urn:oid:2.5.4.42\" id=\"givenName\"/>\n\
             <Attribute name=\"urn:oid:2.5.4.4\" id=\"sn\"/>\n\
             <Attribute name=\"urn:oid:2.16.840.1.113730.3.1.241\" id=\"displayName\"/>\n\
             <Attribute name=\"urn:oid:0.9.2342.19200300.100.1.1\" id=\"uid\"/>\n\
             <Attribute name=\"urn:oid:1.3.6.1.4.1.5923.1.5.1.1\" id=\"isMemberOf\"/>\n\
             </Attributes>",
        );
        std::fs::write(etc.join("attribute-map.xml"), map).unwrap();

        // Logging: the same categories and levels as Debian's, into this directory instead
        // of /var/log/shibboleth (shibd) and syslog (mod_shib), so the test can read them.
        let logger = std::fs::read_to_string(etc.join("shibd.logger")).unwrap();
        assert!(logger.contains("/var/log/shibboleth/"));
        let logger = logger.replace("/var/log/shibboleth/", &format!("{}/", log.display()));
        std::fs::write(etc.join("shibd.logger"), logger).unwrap();
        let native = std::fs::read_to_string(etc.join("native.logger")).unwrap();
        let native = edit(
            &native,
            "log4j.appender.native_log=org.apache.log4j.LocalSyslogAppender",
            &format!(
                "log4j.appender.native_log=org.apache.log4j.FileAppender\n\
                 log4j.appender.native_log.fileName={}/native.log",
                log.display()
            ),
        );
        std::fs::write(etc.join("native.logger"), native).unwrap();

        // The protected page: Apache's environment as mod_shib leaves it (SSI printenv).
        std::fs::write(
            docroot.join("secure/env.shtml"),
            "<pre>\n<!--#printenv -->\n</pre>\n",
        )
        .unwrap();

        // As root, Apache's children run as www-data: they must reach the socket's
        // directory (shibd makes the socket 0777), and mod_shib must append to native.log.
        apache::open_up(&run.join("shibboleth"), false);
        std::fs::write(log.join("native.log"), "").unwrap();
        if apache::is_root() {
            std::fs::set_permissions(
                log.join("native.log"),
                std::fs::Permissions::from_mode(0o666),
            )
            .unwrap();
        }
        let site = format!(
            "LoadModule mod_shib {MOD_SHIB}\n\
             ShibConfig {dir}/etc/shibboleth/shibboleth2.xml\n\
             # Debian's /etc/apache2/conf-available/shib.conf, as is.\n\
             ShibCompatValidUser Off\n\
             <Location /Shibboleth.sso>\n  AuthType None\n  Require all granted\n</Location>\n\
             <Location /secure>\n\
               AuthType shibboleth\n\
               ShibRequestSetting requireSession true\n\
               Require shib-session\n\
               Options +Includes\n\
               SetHandler server-parsed\n\
             </Location>\n",
            dir = dir.display()
        );

        // Only what the daemons need: nothing of the test's environment (LD_LIBRARY_PATH
        // into target/, say) reaches them or the page that prints the environment.
        let env = [
            ("PATH", PathBuf::from("/usr/sbin:/usr/bin:/sbin:/bin")),
            ("SHIBSP_CFGDIR", dir.join("etc")),
            ("SHIBSP_RUNDIR", run.clone()),
            ("SHIBSP_CACHEDIR", dir.join("cache")),
            ("SHIBSP_LOGDIR", log.clone()),
        ];
        let mut shibd = Daemon {
            name: "shibd",
            child: Command::new(SHIBD)
                .arg("-F") // in the foreground: a child of this test, stopped on drop
                .arg("-f") // a stale socket from an earlier run is removed
                .arg("-c")
                .arg(etc.join("shibboleth2.xml"))
                .arg("-p")
                .arg(run.join("shibd.pid"))
                .env_clear()
                .envs(env.clone())
                // shibd's logging; mod_shib, without it, reads native.logger.
                .env("SHIBSP_LOGGING", etc.join("shibd.logger"))
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(log.join("shibd.console")).unwrap())
                .stderr(std::fs::File::create(log.join("shibd.stderr")).unwrap())
                .spawn()
                .unwrap(),
        };
        let socket = run.join("shibboleth/shibd.sock");
        let started = Instant::now();
        while !socket.exists() {
            shibd.check_running(&log.join("shibd.log"));
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "shibd made no socket: {}",
                std::fs::read_to_string(log.join("shibd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let apache = Apache::start(dir, port, &site, &env);
        Shibboleth {
            base,
            entity_id,
            dir: dir.to_path_buf(),
            apache: Some(apache),
            shibd: Some(shibd),
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default()
    }

    /// Stops Apache, then shibd, each by its own clean shutdown, so the logs are complete.
    pub fn stop(&mut self) {
        drop(self.apache.take());
        drop(self.shibd.take());
    }
}

impl Drop for Shibboleth {
    fn drop(&mut self) {
        self.stop();
    }
}
