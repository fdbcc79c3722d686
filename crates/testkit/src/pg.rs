//! A throwaway PostgreSQL cluster for tests.
//!
//! One cluster per test binary, started on first use from the Debian `postgresql` binaries:
//! `initdb` into a temp dir, `pg_ctl start` on a free local port with the socket in that dir.
//! Each test gets its own database in it ([`fresh_database_url`]). PostgreSQL refuses to run
//! as root, so under root the cluster runs as the `postgres` system user (created if
//! missing). A detached watchdog stops the cluster and deletes its directory as soon as the
//! test process is gone, however it ended (a `static` is never dropped, and a panic or abort
//! would skip any clean-up code of ours).
//!
//! Missing binaries are a test failure with a clear message, never a silent skip.
//! `LATCHKEY_PG_BIN` may name the directory holding `initdb`, `pg_ctl` and `postgres`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running cluster.
#[derive(Debug)]
pub struct PgCluster {
    /// Where the data directory, socket and log live.
    pub root: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The superuser (trust authentication).
    pub user: String,
}

static CLUSTER: OnceLock<Result<PgCluster, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The shared cluster, started on first call; panics with the reason if it cannot start.
pub fn cluster() -> &'static PgCluster {
    match CLUSTER.get_or_init(start) {
        Ok(cluster) => cluster,
        Err(reason) => panic!("cannot start a throwaway PostgreSQL cluster: {reason}"),
    }
}

impl PgCluster {
    /// URL of a database in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}",
            self.user, self.port
        )
    }
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database_url() -> String {
    use sqlx::Connection;
    let cluster = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap_or_else(|e| panic!("connecting to the test cluster: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    admin.close().await.ok();
    cluster.url(&name)
}

fn start() -> Result<PgCluster, String> {
    let bin = find_bin_dir()?;
    let run_as = if is_root() {
        Some(ensure_postgres_user()?)
    } else {
        None
    };

    // Under /tmp when it exists: a private $TMPDIR (e.g. /root/tmp) would be untraversable
    // for the `postgres` user, and a long one would overflow the 107-byte socket path limit.
    let base = Path::new("/tmp");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let root = tempfile::Builder::new()
        .prefix("latchkey-pg-")
        .tempdir_in(base)
        .map_err(|e| format!("creating a temp dir: {e}"))?
        .keep();
    let data = root.join("data");
    if let Some(user) = &run_as {
        run(Command::new("chown").arg(user).arg(&root), "chown")?;
    }
    run(
        as_user(&run_as, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "latchkey",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]),
        "initdb",
    )?;
    watchdog(&bin, &run_as, &root, &data);

    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let options = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            root.display()
        );
        let started = run(
            as_user(&run_as, &bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(root.join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        );
        match started {
            Ok(()) => {
                return Ok(PgCluster {
                    root,
                    port,
                    user: "latchkey".into(),
                });
            }
            Err(e) => {
                let log = std::fs::read_to_string(root.join("postgres.log")).unwrap_or_default();
                last_error = format!("{e}; server log: {log}");
            }
        }
    }
    Err(last_error)
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `$LATCHKEY_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else whatever `PATH` offers.
fn find_bin_dir() -> Result<PathBuf, String> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Ok(dir) = std::env::var("LATCHKEY_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "LATCHKEY_PG_BIN={} lacks initdb/pg_ctl/postgres",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_all(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| has_all(dir))
        .ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in \
             /usr/lib/postgresql/*/bin or PATH; install the Debian package `postgresql` \
             (scripts/test does) or set LATCHKEY_PG_BIN"
                .to_string()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The unprivileged account the server runs as under root: `postgres`, created if missing.
fn ensure_postgres_user() -> Result<String, String> {
    let user = "postgres";
    let exists = Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !exists {
        run(
            Command::new("useradd").args([
                "--system",
                "--no-create-home",
                "--shell",
                "/bin/false",
                user,
            ]),
            "useradd postgres",
        )?;
    }
    Ok(user.to_string())
}

fn as_user(run_as: &Option<String>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// Starts a detached shell that waits for this process to end, then stops the cluster and
/// removes its directory.
fn watchdog(bin: &Path, run_as: &Option<String>, root: &Path, data: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = match run_as {
        Some(user) => format!(
            "runuser -u {user} -- '{}' -D '{}' -m immediate stop",
            pg_ctl.display(),
            data.display()
        ),
        None => format!(
            "'{}' -D '{}' -m immediate stop",
            pg_ctl.display(),
            data.display()
        ),
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
        pid = std::process::id(),
        root = root.display(),
    );
    // setsid puts the watchdog in its own session, so a Ctrl-C aimed at `cargo test` does not
    // take it down before it has cleaned up.
    let spawned = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if spawned.is_err() {
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}
