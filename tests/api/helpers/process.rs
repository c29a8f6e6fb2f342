//! The real binary as a child process: config files, start, kill, run to completion.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use biller_inbox::settings::Backend;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The real binary, serving on a temp config. Logs (stderr) are captured to a file.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub address: String,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_biller-inbox")
}

/// Writes a config file that puts the store and port where a test wants them (on PostgreSQL,
/// a fresh database, see `test_backend`).
pub fn write_config(dir: &Path, store: &Path, extra: &str) -> PathBuf {
    let database = match super::test_backend() {
        Backend::Sled => None,
        Backend::Postgres => Some(super::database_for(store).url),
    };
    write_config_on(dir, store, database.as_deref(), extra)
}

/// Like `write_config`, on the given PostgreSQL database when there is one (an in-process
/// app's `pg_url`), else on the sled store at `store`.
pub fn write_config_on(dir: &Path, store: &Path, pg_url: Option<&str>, extra: &str) -> PathBuf {
    let path = dir.join("test.toml");
    let (backend, postgres) = match pg_url {
        None => (String::new(), String::new()),
        Some(url) => (
            "backend = \"postgres\"\n".to_string(),
            format!("[store.postgres]\nurl = \"{url}\"\npool_size = 4\nconnect_timeout_ms = 2000\n"),
        ),
    };
    let text = format!(
        "[server]\nport = 0\nworkers = 2\n[store]\n{backend}path = \"{}\"\ncache_capacity_bytes = 16777216\n{postgres}[log]\nlevel = \"debug\"\n{extra}",
        store.display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Writes a secret file the way an operator must: readable by its owner only (the server refuses
/// a secret file every user can read).
pub fn write_secret_file(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).expect("write secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// A config file for the real binary on PostgreSQL: port 0, the given database, a small pool,
/// short timeouts (a test waits seconds, not minutes, for an outage to show).
pub fn write_pg_config(dir: &Path, db_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("test-pg.toml");
    let text = format!(
        "[server]\nport = 0\nworkers = 2\n[store]\nbackend = \"postgres\"\n[store.postgres]\nurl = \"{db_url}\"\n\
         pool_size = 4\nconnect_timeout_ms = 1000\nstatement_timeout_ms = 5000\n[log]\nlevel = \"info\"\n{extra}"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

pub async fn start_binary(config: &Path, log_path: &Path) -> ServerProcess {
    let mut command = tokio::process::Command::new(binary());
    command.args(["serve", "--config"]).arg(config);
    start_command(command, log_path).await
}

impl ServerProcess {
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Runs the real binary with `args` to completion: (exit code, stdout, stderr).
pub async fn run_binary(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(binary())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like `start_binary`, for a server started by another command (a wrapper that ends by
/// exec-ing the binary, so the child's pid is the server's).
pub async fn start_command(command: tokio::process::Command, log_path: &Path) -> ServerProcess {
    start_command_in(command, Path::new(env!("CARGO_MANIFEST_DIR")), log_path).await
}

/// Like `start_command`, from the working directory `cwd`.
pub async fn start_command_in(mut command: tokio::process::Command, cwd: &Path, log_path: &Path) -> ServerProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    let mut child = command
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("command starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("biller-inbox listening on ") {
                return addr.trim().to_string();
            }
        }
        panic!("the server exited before listening; see {}", log_path.display());
    })
    .await
    .expect("server listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ServerProcess { child, address }
}

/// Whether this process may mount a tmpfs in a private mount namespace (root, or CAP_SYS_ADMIN).
/// Tests that need it fail with this message where it is missing, rather than pass unchecked.
pub fn assert_private_mounts_work() {
    let probe = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "cannot mount a tmpfs in a private mount namespace (`unshare -m` as root is needed): {probe:?}"
    );
}
