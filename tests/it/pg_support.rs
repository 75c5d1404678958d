//! A throwaway PostgreSQL server for the PostgreSQL store's tests, and one fresh database per
//! test so that they run in parallel.
//!
//! `OVHFORM_TEST_PG_URL` (a `postgres://` URL of a loopback server whose user may
//! `CREATE DATABASE`) is used when set. Otherwise the first test that needs a server starts one
//! for the whole test binary: `initdb` into a temp dir under /tmp (from PATH, else the newest
//! `/usr/lib/postgresql/*/bin`), listening on 127.0.0.1 only, on a free port, its Unix socket
//! in the temp dir. As root (here and in CI) initdb and the server run as `postgres` (or
//! `nobody`) through `runuser`, since PostgreSQL refuses to run as root.
//!
//! Stopping it: statics are never dropped and a test binary can die of a signal, so cleanup
//! is not left to this process. A watchdog shell, in its own process group (a Ctrl-C to
//! `cargo test` does not reach it), blocks reading a pipe whose write end only this process
//! holds; when the process exits, however it exits, the read ends, and the watchdog stops the
//! server (immediate shutdown) and deletes the temp dir.
//!
//! The throwaway server also accepts TLS, with a self-signed certificate made by `openssl`
//! that no client trusts: the store's TLS path is tested by being refused.
//!
//! No server found or started is a test failure saying how to get one, never a silent pass.
//!
//! Must not touch: the store itself (the tests drive `ovhform::state::PgStore`); any address
//! but loopback.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

const HOW_TO_GET_ONE: &str = "install PostgreSQL's server (Debian: `apt-get install postgresql`; \
     scripts/test.sh does it when initdb is missing), or set OVHFORM_TEST_PG_URL to a \
     postgres:// URL of a loopback server whose user may CREATE DATABASE";

/// The server every test of this process shares.
struct Server {
    /// URL of its maintenance database, from which each test creates its own.
    admin_url: String,
    /// A server someone else runs: the tests drop their databases when done.
    external: bool,
    /// The watchdog; its stdin is the pipe whose end tells it this process is gone. Kept for
    /// the life of the process, never waited for.
    _watchdog: Option<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A database of its own for one test.
pub struct TestDb {
    /// Its URL (no TLS: loopback).
    pub url: String,
    name: String,
    admin_url: String,
    /// On a server someone else runs (`OVHFORM_TEST_PG_URL`), configured as it is.
    pub external: bool,
}

impl TestDb {
    /// A plain client on this database, for looking behind the store's back.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to the test database {}: {e}", self.name));
        tokio::spawn(connection);
        client
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.external {
            // The throwaway server goes away with its data directory.
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the clean-up gets a thread and a runtime of
        // its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin_url, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

/// A new, empty database on the shared server (started on first use).
pub async fn fresh_db() -> TestDb {
    let server = tokio::task::spawn_blocking(|| SERVER.get_or_init(start))
        .await
        .expect("the server start-up thread");
    let server = match server {
        Ok(server) => server,
        Err(msg) => panic!("no PostgreSQL for the PostgreSQL store tests: {msg}"),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = format!(
        "ovhform_t{}_{}_{nanos}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(&server.admin_url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test server's maintenance database: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e:?}"));
    TestDb {
        url: with_database(&server.admin_url, &name),
        name,
        admin_url: server.admin_url.clone(),
        external: server.external,
    }
}

/// `url` with its database replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_start = base[authority_start..]
        .find('@')
        .map(|i| authority_start + i + 1)
        .unwrap_or(authority_start);
    let host_end = base[host_start..]
        .find('/')
        .map(|i| host_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn start() -> Result<Server, String> {
    if let Some(url) = std::env::var("OVHFORM_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Ok(Server {
            admin_url: url,
            external: true,
            _watchdog: None,
        });
    }
    let bin = find_bin_dir().ok_or_else(|| {
        format!(
            "initdb was found neither on PATH nor under /usr/lib/postgresql/*/bin: {HOW_TO_GET_ONE}"
        )
    })?;
    let user = if is_root() {
        Some(unprivileged_user()?)
    } else {
        None
    };
    let dir = tempfile::Builder::new()
        .prefix("ovhform-pg-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("create a temp dir under /tmp: {e}"))?
        .keep();
    // The watchdog first: from here on, whatever fails, the dir (and a server) is cleaned up.
    let watchdog = spawn_watchdog(&dir)?;
    if let Some(user) = &user {
        chown(&dir, user)?;
    }
    let data = dir.join("data");
    run(
        user.as_deref(),
        &dir,
        &bin.join("initdb"),
        &[
            "-D".as_ref(),
            data.as_os_str(),
            "--username=postgres".as_ref(),
            "--auth=trust".as_ref(),
            "--no-locale".as_ref(),
            "--encoding=UTF8".as_ref(),
            "--no-sync".as_ref(),
            "--no-instructions".as_ref(),
        ],
    )?;
    let tls = tls_files(&dir, user.as_deref())?;
    let log = dir.join("server.log");
    let mut last = String::new();
    // A free port can be taken between the probe and the server's bind: try a few.
    for _ in 0..5 {
        let port = free_port()?;
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        if let Some((cert, key)) = &tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        let started = run(
            user.as_deref(),
            &dir,
            &bin.join("pg_ctl"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                "start".as_ref(),
            ],
        );
        match started {
            Ok(()) => {
                return Ok(Server {
                    admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    external: false,
                    _watchdog: Some(watchdog),
                });
            }
            Err(e) => {
                last = format!("{e}\n{}", tail(&log));
                if !last.contains("could not bind") && !last.contains("Address already in use") {
                    break;
                }
            }
        }
    }
    Err(format!(
        "the PostgreSQL server did not start: {last}\n{HOW_TO_GET_ONE}"
    ))
}

/// A certificate and key for the server, so that the store's TLS path (handshake, certificate
/// verification) can be tested against it: self-signed, made with `openssl` (a dependency of
/// PostgreSQL's Debian packages), valid for `localhost` and 127.0.0.1. No trust store holds it
/// — not Debian's "snakeoil" certificate, which `/etc/ssl/certs` does trust — so the tests can
/// only see it refused. `None` without `openssl`.
fn tls_files(dir: &Path, user: Option<&str>) -> Result<Option<(PathBuf, PathBuf)>, String> {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let made = has("openssl")
        && Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            // Not `CN=localhost`: that names Debian's trusted snakeoil certificate, which path
            // building would then try as this one's issuer.
            .args(["-subj", "/CN=ovhform-test-server"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // A server certificate, not a CA: refused for its issuer alone.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !made {
        return Ok(None);
    }
    // The server refuses a key that is not its own or that others may read.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", key.display()))?;
    if let Some(user) = user {
        chown(&cert, user)?;
        chown(&key, user)?;
    }
    Ok(Some((cert, key)))
}

/// The directory of `initdb` and `pg_ctl`.
fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn unprivileged_user() -> Result<String, String> {
    for user in ["postgres", "nobody"] {
        if Command::new("id")
            .arg("-u")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(user.to_string());
        }
    }
    Err(format!(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run initdb as: \
         {HOW_TO_GET_ONE}"
    ))
}

fn chown(path: &Path, user: &str) -> Result<(), String> {
    let status = Command::new("chown")
        .arg(format!("{user}:"))
        .arg(path)
        .status()
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("chown {user}: {} failed", path.display()))
    }
}

/// Runs a PostgreSQL tool, as `user` when given (from root: `runuser`, else `setpriv`).
fn run(
    user: Option<&str>,
    cwd: &Path,
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<(), String> {
    let mut cmd = match user {
        Some(user) if has("runuser") => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        Some(user) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", user, "--regid", user, "--clear-groups"])
                .arg(program);
            c
        }
        None => Command::new(program),
    };
    // The tools must be able to stay in their working directory, and need no locale.
    let output = cmd
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}){}: {}{}",
            program.display(),
            output.status,
            user.map(|u| format!(" as {u}")).unwrap_or_default(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ))
    }
}

fn has(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("find a free port on 127.0.0.1: {e}"))
}

/// Stops the server and deletes `dir` once this process has exited (see the module doc).
fn spawn_watchdog(dir: &Path) -> Result<Child, String> {
    use std::os::unix::process::CommandExt as _;
    const SCRIPT: &str = r#"
        dir=$1
        read -r _ || true
        pidfile="$dir/data/postmaster.pid"
        if [ -f "$pidfile" ]; then
            pid=$(head -n 1 "$pidfile")
            kill -QUIT "$pid" 2>/dev/null
            i=0
            while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
                sleep 0.1
                i=$((i + 1))
            done
        fi
        rm -rf "$dir"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("ovhform-pg-watchdog")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("start the server's watchdog: {e}"))
}

/// The end of the server's log, for a failed start.
fn tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[test]
fn with_database_replaces_only_the_database() {
    assert_eq!(
        with_database("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:1/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    assert_eq!(
        with_database("postgresql://u@h/a", "x"),
        "postgresql://u@h/x"
    );
}
