//! A private Apache httpd for the SP oracles (Shibboleth's `mod_shib`, `mod_auth_mellon`):
//! Debian's `apache2` binary run in the foreground from a directory the test owns, with a
//! generated `httpd.conf` on a loopback port, its logs in `<dir>/log`. Nothing of
//! `/etc/apache2` or the system service is read or changed.
//!
//! Layout: `httpd.conf`, `htdocs/` (the document root; the protected pages go under
//! `htdocs/secure/`), `run/` (pid file, runtime files), `log/` (`error.log`,
//! `apache.stderr`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const APACHE: &str = "/usr/sbin/apache2";
pub const MODULES: &str = "/usr/lib/apache2/modules";

pub(crate) use crate::shared::serve::free_port;

/// Whether the test runs as root: Apache's children then run as www-data, and what they
/// read or write must be theirs to reach.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Makes `path` reachable (0755) or, for a directory the children write to, writable by
/// everyone (0777), when running as root; as anyone else the children are the test's own.
pub fn open_up(path: &Path, writable: bool) {
    if is_root() {
        let mode = if writable { 0o777 } else { 0o755 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A running daemon: SIGTERM on drop (its own clean shutdown), SIGKILL if it lingers.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
}

impl Daemon {
    /// Fails the test with `log` if the daemon has exited.
    pub fn check_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the directories [`Apache::start`] uses, so an SP's setup can write into them
/// (pages under `htdocs/secure`, logs) before Apache starts.
pub fn prepare(dir: &Path) {
    for d in ["htdocs/secure", "run", "log"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for d in [dir, &dir.join("run"), &dir.join("htdocs")] {
        open_up(d, false);
    }
    open_up(&dir.join("log"), true);
}

pub struct Apache {
    /// `http://localhost:PORT`.
    pub base: String,
    dir: PathBuf,
    daemon: Option<Daemon>,
}

impl Apache {
    /// Writes `<dir>/httpd.conf` (the common base: loopback `port`, the directory's pid,
    /// runtime and log files, the event MPM, core authn/authz, SSI for the pages that
    /// print their environment) followed by `site` (the SP's modules and locations),
    /// then starts apache2 with only `env` in its environment and waits until it listens.
    pub fn start(dir: &Path, port: u16, site: &str, env: &[(&str, PathBuf)]) -> Apache {
        assert!(
            Path::new(APACHE).exists(),
            "{APACHE} is missing: install Debian's apache2"
        );
        prepare(dir);
        let user = if is_root() {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let httpd_conf = dir.join("httpd.conf");
        std::fs::write(
            &httpd_conf,
            format!(
                "ServerRoot {dir}\n\
                 ServerName localhost\n\
                 Listen 127.0.0.1:{port}\n\
                 {user}\
                 PidFile {dir}/run/httpd.pid\n\
                 DefaultRuntimeDir {dir}/run\n\
                 ErrorLog {dir}/log/error.log\n\
                 LogLevel warn\n\
                 LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
                 LoadModule authn_core_module {MODULES}/mod_authn_core.so\n\
                 LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
                 LoadModule include_module {MODULES}/mod_include.so\n\
                 DocumentRoot {dir}/htdocs\n\
                 {site}",
                dir = dir.display()
            ),
        )
        .unwrap();
        let log = dir.join("log");
        let mut daemon = Daemon {
            name: "apache2",
            child: Command::new(APACHE)
                .arg("-f")
                .arg(&httpd_conf)
                .arg("-DFOREGROUND")
                .env_clear()
                .envs(env.iter().cloned())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log.join("apache.stderr")).unwrap())
                .spawn()
                .unwrap(),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            daemon.check_running(&log.join("apache.stderr"));
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "apache2 is not listening on {port}: {}",
                std::fs::read_to_string(log.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Apache {
            base: format!("http://localhost:{port}"),
            dir: dir.to_path_buf(),
            daemon: Some(daemon),
        }
    }

    /// A log file of `<dir>/log` (empty when it does not exist).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default()
    }

    /// Stops Apache by its own clean shutdown, so its logs are complete.
    pub fn stop(&mut self) {
        drop(self.daemon.take());
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}
