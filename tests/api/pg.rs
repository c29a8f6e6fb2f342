//! A throwaway PostgreSQL for the tests, one per test binary, a fresh database per test.
//!
//! The server is the one named by `BILLER_INBOX_TEST_PG_URL` (a superuser or a role with
//! CREATEDB), or else a cluster this binary starts itself from the installed server binaries:
//! `initdb` into a temp folder as an unprivileged user (the server refuses to run as root, so
//! root runs it as `postgres` through `runuser`), a free loopback port, fsync on. It is stopped
//! by its PID when the binary exits (an `atexit` hook), and a watchdog process stops it if the
//! binary dies without exiting (SIGKILL, a timeout). Where neither is possible the tests FAIL
//! naming what to install; they never skip.
//!
//! Every test gets its own database, created from a template that is migrated once, so a test
//! starts from the schema in milliseconds.

// Shared by two test binaries (api, faults); each uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Connection URL for the app (`store.postgres.url`).
    pub url: String,
    pub name: String,
}

/// The server the tests use, and what to clean up at exit.
struct Server {
    /// `postgres://user[:password]@host:port` without a database name.
    base_url: String,
    /// The database holding the migrated schema every test database is copied from.
    template: String,
    /// The cluster this binary started (None with BILLER_INBOX_TEST_PG_URL).
    cluster: Option<Cluster>,
}

struct Cluster {
    dir: PathBuf,
    /// The postmaster's PID; a restart (`start_again`) changes it.
    pid: AtomicI32,
    bindir: PathBuf,
    port: u16,
    /// The server options it was started with, for a restart.
    options: String,
    runner: Runner,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Set by a test binary that stops and starts the server (the fault tests) before its first
/// database: it then always gets a cluster of its own, even with BILLER_INBOX_TEST_PG_URL.
pub static OWN_CLUSTER: AtomicBool = AtomicBool::new(false);

/// A fresh database with the current schema. Panics, naming what to install, when no
/// PostgreSQL can be had.
pub fn test_database() -> TestDatabase {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => panic!("PostgreSQL tests cannot run: {why}"),
    };
    let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    admin(
        &server.base_url,
        &[format!("CREATE DATABASE {name} TEMPLATE {}", server.template)],
    )
    .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    if server.cluster.is_none() {
        CREATED.lock().unwrap_or_else(|p| p.into_inner()).push(name.clone());
    }
    TestDatabase {
        url: format!("{}/{name}", server.base_url),
        name,
    }
}

/// The PID of the postmaster of the cluster this process started (None with
/// BILLER_INBOX_TEST_PG_URL, or before the first database): the benchmark counts its CPU.
pub fn cluster_pid() -> Option<i32> {
    match SERVER.get() {
        Some(Ok(Server {
            cluster: Some(cluster), ..
        })) => Some(cluster.pid.load(Ordering::SeqCst)),
        _ => None,
    }
}

/// Drops a database made by `test_database` once nothing uses it any more (the benchmark
/// frees each target's data before the next one).
pub fn drop_database(db: &TestDatabase) -> Result<(), String> {
    let server = match SERVER.get() {
        Some(Ok(server)) => server,
        _ => return Err("no PostgreSQL server was started".into()),
    };
    admin(
        &server.base_url,
        &[format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name)],
    )?;
    CREATED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|n| *n != db.name);
    Ok(())
}

/// An empty database (no schema), for tests of the migrations themselves.
pub fn empty_database() -> TestDatabase {
    let db = test_database();
    let server = SERVER.get().and_then(|s| s.as_ref().ok()).expect("server started");
    let name = format!("{}_empty", db.name);
    admin(
        &server.base_url,
        &[format!("CREATE DATABASE {name} TEMPLATE template0")],
    )
    .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    if server.cluster.is_none() {
        CREATED.lock().unwrap_or_else(|p| p.into_inner()).push(name.clone());
    }
    TestDatabase {
        url: format!("{}/{name}", server.base_url),
        name,
    }
}

/// Runs SQL statements against a test database (as the superuser), one after the other.
pub fn sql(db: &TestDatabase, statements: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let url = db.url.clone();
    let statements: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
    on_own_runtime(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut last = Vec::new();
        for s in &statements {
            last = client
                .simple_query(s)
                .await
                .map_err(|e| format!("{s}: {e}"))?
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_string())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect();
        }
        Ok(last)
    })
}

fn own_cluster() -> &'static Cluster {
    match SERVER.get_or_init(start) {
        Ok(Server {
            cluster: Some(cluster), ..
        }) => cluster,
        Ok(_) => panic!("this test stops the server: it needs a cluster of its own (set pg::OWN_CLUSTER)"),
        Err(why) => panic!("PostgreSQL tests cannot run: {why}"),
    }
}

/// Stops the cluster the way a crash of the database machine would: `pg_ctl stop -m
/// immediate` (no checkpoint; the next start recovers from the WAL).
pub fn stop_immediately() {
    let c = own_cluster();
    c.runner
        .run(
            &c.bindir.join("pg_ctl"),
            &[
                "-D",
                path_str(&c.dir.join("data")).expect("utf-8"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            &c.dir,
        )
        .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));
}

/// Starts the cluster again on the same port after `stop_immediately`.
pub fn start_again() {
    let c = own_cluster();
    let data = c.dir.join("data");
    let log = c.dir.join("server.log");
    c.runner
        .run(
            &c.bindir.join("pg_ctl"),
            &[
                "-D",
                path_str(&data).expect("utf-8"),
                "-l",
                path_str(&log).expect("utf-8"),
                "-w",
                "-t",
                "60",
                "-o",
                &c.options,
                "start",
            ],
            &c.dir,
        )
        .unwrap_or_else(|e| panic!("pg_ctl start: {e}"));
    c.pid.store(read_pid(&data).expect("postmaster.pid"), Ordering::SeqCst);
}

fn read_pid(data: &Path) -> Option<i32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
}

fn start() -> Result<Server, String> {
    let server = match std::env::var("BILLER_INBOX_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() && !OWN_CLUSTER.load(Ordering::SeqCst) => external(url.trim())?,
        _ => local_cluster()?,
    };
    admin(
        &server.base_url,
        &[
            format!("DROP DATABASE IF EXISTS {}", server.template),
            format!("CREATE DATABASE {} TEMPLATE template0", server.template),
        ],
    )?;
    let template_url = format!("{}/{}", server.base_url, server.template);
    on_own_runtime(async move {
        let (mut client, connection) = tokio_postgres::connect(&template_url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        biller_inbox::store::postgres::migrations::migrate(&mut client, 30_000)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    // SAFETY: registering a plain extern "C" function with the C library's atexit.
    unsafe {
        libc::atexit(clean_up_at_exit);
    }
    Ok(server)
}

/// The server of BILLER_INBOX_TEST_PG_URL; test databases are dropped at exit.
fn external(url: &str) -> Result<Server, String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("BILLER_INBOX_TEST_PG_URL does not parse: {e}"))?;
    let user = config.get_user().unwrap_or("postgres");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    Ok(Server {
        base_url: format!("postgres://{user}{password}@{host}:{port}"),
        template: format!("biller_tpl_{}", std::process::id()),
        cluster: None,
    })
}

/// initdb + pg_ctl start from the installed server binaries, as an unprivileged user.
fn local_cluster() -> Result<Server, String> {
    let bindir = find_bindir().ok_or(
        "no PostgreSQL server binaries (initdb, pg_ctl) found in /usr/lib/postgresql/*/bin or on PATH: \
         install the Debian package `postgresql` (apt-get install postgresql; scripts/test.sh does), \
         or set BILLER_INBOX_TEST_PG_URL to a server where the tests may create databases",
    )?;
    let runner = Runner::detect()?;
    let dir = tempfile::Builder::new()
        .prefix("biller-inbox-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    runner.own(&dir)?;
    // Before anything can start: whatever becomes of this binary, the folder and any server
    // in it go with it.
    spawn_watchdog(&dir);
    let data = dir.join("data");
    runner.run(
        &bindir.join("initdb"),
        &[
            "-D",
            path_str(&data)?,
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            // Only the cluster's creation skips syncing; the server below runs with fsync on.
            "--no-sync",
        ],
        &dir,
    )?;
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=on -c synchronous_commit=on -c full_page_writes=on \
             -c max_connections=300 -c shared_buffers=64MB",
            path_str(&dir)?
        );
        let log = dir.join("server.log");
        let started = runner.run(
            &bindir.join("pg_ctl"),
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
            &dir,
        );
        match started {
            Ok(()) => {
                let pid = read_pid(&data).ok_or("the server started but postmaster.pid has no PID")?;
                return Ok(Server {
                    base_url: format!("postgres://postgres@127.0.0.1:{port}"),
                    template: "biller_template".into(),
                    cluster: Some(Cluster {
                        dir,
                        pid: AtomicI32::new(pid),
                        bindir,
                        port,
                        options,
                        runner,
                    }),
                });
            }
            Err(e) => {
                last_error = format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
        }
    }
    Err(format!("pg_ctl start failed three times: {last_error}"))
}

/// Where initdb and pg_ctl are: Debian keeps them off PATH in /usr/lib/postgresql/VERSION/bin.
fn find_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    })
}

/// How server commands are run: directly, or as `postgres` through runuser when we are root.
#[derive(Clone)]
enum Runner {
    Direct,
    As { user: String, uid: u32, gid: u32 },
}

impl Runner {
    fn detect() -> Result<Self, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(Runner::Direct);
        }
        let user = "postgres".to_string();
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, &user]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        match (id("-u"), id("-g")) {
            (Some(uid), Some(gid)) if uid != 0 => Ok(Runner::As { user, uid, gid }),
            _ => Err(
                "running as root, and PostgreSQL refuses to run as root: there is no unprivileged \
                      `postgres` user to run it as (the Debian package `postgresql` creates one), \
                      or set BILLER_INBOX_TEST_PG_URL"
                    .into(),
            ),
        }
    }

    fn own(&self, dir: &Path) -> Result<(), String> {
        if let Runner::As { uid, gid, .. } = self {
            std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    fn run(&self, program: &Path, args: &[&str], cwd: &Path) -> Result<(), String> {
        let mut command = match self {
            Runner::Direct => Command::new(program),
            Runner::As { user, .. } => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
        };
        let out = command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {} ({e}); runuser comes with util-linux", program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed: {}{}",
                program.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A process of its own (own process group, so a Ctrl-C to the tests does not take it) that,
/// once this test binary is gone however it went, stops the server by the PID in its
/// postmaster.pid (if one runs) and removes the folder.
fn spawn_watchdog(dir: &Path) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         pid=$(head -n 1 '{dir}/data/postmaster.pid' 2>/dev/null); \
         if [ -n \"$pid\" ]; then kill -INT \"$pid\" 2>/dev/null; \
         for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.5; done; \
         kill -KILL \"$pid\" 2>/dev/null; fi; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display(),
    );
    use std::os::unix::process::CommandExt;
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

/// Stops the cluster by its PID (fast shutdown) and removes its folder; with an external
/// server, drops the databases the tests created.
extern "C" fn clean_up_at_exit() {
    let Some(Ok(server)) = SERVER.get() else {
        return;
    };
    match &server.cluster {
        Some(cluster) => {
            let pid = cluster.pid.load(Ordering::SeqCst);
            // SAFETY: signalling a PID we started; kill has no memory preconditions.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
            for _ in 0..100 {
                // SAFETY: as above; signal 0 only checks the process exists.
                if unsafe { libc::kill(pid, 0) } != 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = std::fs::remove_dir_all(&cluster.dir);
        }
        None => {
            let mut drops: Vec<String> = CREATED
                .lock()
                .map(|c| {
                    c.iter()
                        .map(|n| format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                        .collect()
                })
                .unwrap_or_default();
            drops.push(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", server.template));
            let _ = admin(&server.base_url, &drops);
        }
    }
}

/// Runs statements on the server's `postgres` database (CREATE/DROP DATABASE).
fn admin(base_url: &str, statements: &[String]) -> Result<(), String> {
    let url = format!("{base_url}/postgres");
    let statements = statements.to_vec();
    on_own_runtime(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect to the test server: {e}"))?;
        tokio::spawn(connection);
        for s in &statements {
            client.batch_execute(s).await.map_err(|e| {
                let detail = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                format!("{s}: {detail}")
            })?;
        }
        Ok(())
    })
}

/// Runs a future to completion on a runtime of its own, on a thread of its own: callers may
/// be inside a test's runtime, which cannot be blocked on.
fn on_own_runtime<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(f)
    })
    .join()
    .unwrap_or_else(|_| Err("the database helper thread panicked".into()))
}
