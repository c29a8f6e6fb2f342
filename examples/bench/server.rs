//! The server under test as it deploys: the release binary as a separate process on a temp
//! config and store, plus what the bench reads about it from /proc and `/metrics`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::one_shot;
use crate::scenarios::{self, ADMIN_TOKEN, API_KEY, CLIENT_KEY, SECOND_API_KEY, SECOND_CLIENT_KEY};

pub const LISTENING_PREFIX: &str = "biller-inbox listening on http://";

/// The repository root: the binary runs there so `config/default.toml` (demo Orbipay client,
/// demo Empayre source and its key file) is layered under the bench's config.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/biller-inbox`, next to this example's own `target/<profile>/examples/bench`.
pub fn default_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate the bench executable: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected bench location {}", exe.display()))?;
    Ok(profile_dir.join(format!("biller-inbox{}", std::env::consts::EXE_SUFFIX)))
}

/// Refuses a binary that is missing or older than the sources it is built from: cargo builds an
/// example without building the crate's binaries, so a stale binary would be measured silently.
pub fn check_binary(binary: &Path, allow_stale: bool) -> Result<SystemTime, String> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).map_err(|e| {
        format!(
            "server binary {} is not usable ({e}); build it first: cargo build --release",
            binary.display()
        )
    })?;
    let root = repo_root();
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![root.join("src")];
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        if let Ok(modified) = std::fs::metadata(&file).and_then(|m| m.modified()) {
            if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
                newest = Some((modified, file));
            }
        }
    }
    if let Some((modified, file)) = newest {
        if modified > built {
            let msg = format!(
                "server binary {} is older than {} (changed after the last build); \
                 run `cargo build --release` first",
                binary.display(),
                file.strip_prefix(&root).unwrap_or(&file).display()
            );
            if !allow_stale {
                return Err(format!("{msg}, or pass --allow-stale-binary to measure it anyway"));
            }
            eprintln!("WARNING: {msg}; measuring it anyway (--allow-stale-binary)");
        }
    }
    Ok(built)
}

/// The temp directory of a run: config, accounts file, store and server log. Removed on drop,
/// except a kept store (`--keep-store DIR`), which lives in `DIR/store` with a note of what the
/// bench filled it with (`DIR/bench-fill.txt`) so that a later run reuses it.
pub struct Workdir {
    dir: tempfile::TempDir,
    /// Where the server runs and finds `config/default.toml`.
    server_dir: PathBuf,
    kept: Option<PathBuf>,
}

/// What a kept store holds, as the bench left it: written after the import and after every
/// scenario that posts, read by the next run over the same directory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    /// Accounts imported (`--accounts` of the run that made the store).
    pub accounts: u64,
    /// The highest posting id used so far: the next run starts above it.
    pub last_posting_id: u64,
    /// The highest Empayre event id used so far.
    pub last_event_id: u64,
}

impl Fill {
    fn parse(text: &str) -> Option<Self> {
        let value = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.trim().parse().ok())
        };
        Some(Self {
            accounts: value("accounts")?,
            last_posting_id: value("last_posting_id")?,
            last_event_id: value("last_event_id").unwrap_or(0),
        })
    }

    fn text(&self) -> String {
        format!(
            "# written by the bench (examples/bench): what this kept store was filled with\n\
             accounts={}\nlast_posting_id={}\nlast_event_id={}\n",
            self.accounts, self.last_posting_id, self.last_event_id
        )
    }
}

impl Workdir {
    /// `demo_config`: a file to use as the server's `config/default.toml` instead of the
    /// repository's (an older binary refuses configuration keys it does not know). It is copied
    /// into `root/config/` of the temp dir, next to a link to the repository's `fixtures/`, so
    /// its paths (relative to the file) find the same key files.
    pub fn new(demo_config: Option<&Path>, keep_store: Option<&Path>) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("biller-inbox-bench-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let server_dir = match demo_config {
            None => repo_root(),
            Some(file) => {
                let root = dir.path().join("root");
                let config_dir = root.join("config");
                std::fs::create_dir_all(&config_dir).map_err(|e| format!("create {}: {e}", config_dir.display()))?;
                std::fs::copy(file, config_dir.join("default.toml"))
                    .map_err(|e| format!("copy {}: {e}", file.display()))?;
                std::os::unix::fs::symlink(repo_root().join("fixtures"), root.join("fixtures"))
                    .map_err(|e| format!("link fixtures/ into {}: {e}", root.display()))?;
                root
            }
        };
        if let Some(kept) = keep_store {
            std::fs::create_dir_all(kept).map_err(|e| format!("create {}: {e}", kept.display()))?;
        }
        Ok(Self {
            dir,
            server_dir,
            kept: keep_store.map(Path::to_path_buf),
        })
    }

    /// The store directory: in the kept directory, or in the temp dir.
    pub fn store(&self) -> PathBuf {
        match &self.kept {
            Some(kept) => kept.join("store"),
            None => self.path().join("store"),
        }
    }

    /// What the kept store already holds (None: no kept store, or it is not filled yet).
    pub fn kept_fill(&self) -> Result<Option<Fill>, String> {
        let Some(kept) = &self.kept else { return Ok(None) };
        let note = kept.join("bench-fill.txt");
        match std::fs::read_to_string(&note) {
            Ok(text) => Fill::parse(&text).map(Some).ok_or_else(|| {
                format!(
                    "{} does not parse; remove {} to fill it again",
                    note.display(),
                    kept.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.store().exists() {
                    return Err(format!(
                        "{} holds a store but no bench-fill.txt (a fill cut short?): remove it to fill it again",
                        kept.display()
                    ));
                }
                Ok(None)
            }
            Err(e) => Err(format!("read {}: {e}", note.display())),
        }
    }

    /// Notes what the kept store holds now (nothing without a kept store).
    pub fn note_fill(&self, fill: Fill) -> Result<(), String> {
        let Some(kept) = &self.kept else { return Ok(()) };
        let note = kept.join("bench-fill.txt");
        let partial = kept.join("bench-fill.txt.new");
        std::fs::write(&partial, fill.text()).map_err(|e| format!("write {}: {e}", partial.display()))?;
        std::fs::rename(&partial, &note).map_err(|e| format!("rename to {}: {e}", note.display()))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn server_dir(&self) -> &Path {
        &self.server_dir
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("bench.toml")
    }

    pub fn accounts(&self) -> PathBuf {
        self.path().join("accounts.jsonl")
    }

    pub fn log(&self) -> PathBuf {
        self.path().join("server.log")
    }

    /// Layered over config/default.toml: temp store (or the given PostgreSQL database), port 0,
    /// warn logs, no demo seed, a known admin token. The demo Orbipay client and Empayre source
    /// stay in force.
    pub fn write_config(&self, postgres_url: Option<&str>) -> Result<(), String> {
        let store = self.store();
        let postgres = match postgres_url {
            Some(url) => format!("backend = \"postgres\"\n\n[store.postgres]\nurl = {url:?}\n"),
            None => String::new(),
        };
        let text = format!(
            "[server]\nport = 0\n\n[store]\npath = {store:?}\n{postgres}\n[log]\nlevel = \"warn\"\n\n\
             [seed]\naccounts_file = \"\"\n\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\n\n\
             [[orbipay.clients]]\nclient_key = \"{CLIENT_KEY}\"\nenabled = true\n\
             credentials = [ {{ \"api-key\" = \"{API_KEY}\" }} ]\n\n\
             [[orbipay.clients]]\nclient_key = \"{SECOND_CLIENT_KEY}\"\nenabled = true\n\
             credentials = [ {{ \"api-key\" = \"{SECOND_API_KEY}\" }} ]\n",
            store = store.display().to_string(),
        );
        std::fs::write(self.config(), text).map_err(|e| format!("write {}: {e}", self.config().display()))
    }

    /// `n` accounts as JSON lines.
    pub fn write_accounts(&self, n: u64) -> Result<u64, String> {
        write_accounts_file(&self.accounts(), n)
    }

    /// The last lines of the server log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        match std::fs::read_to_string(self.log()) {
            Ok(text) => {
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(_) => String::new(),
        }
    }
}

/// Writes `n` generated accounts to `path`: a JSON array when the name ends in `.json`, JSON
/// lines otherwise (the two forms `accounts import` reads). Returns the file's size.
pub fn write_accounts_file(path: &Path, n: u64) -> Result<u64, String> {
    let write_error = |e: std::io::Error| format!("write {}: {e}", path.display());
    let file = std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let array = path.extension().is_some_and(|x| x == "json");
    if array {
        out.write_all(b"[\n").map_err(write_error)?;
    }
    for i in 0..n {
        let separator = if array && i + 1 < n { "," } else { "" };
        writeln!(out, "{}{separator}", scenarios::account_line(i)).map_err(write_error)?;
    }
    if array {
        out.write_all(b"]\n").map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("stat {}: {e}", path.display()))
}

/// Numbers read from /proc for one process.
#[derive(Clone, Copy, Default)]
pub struct ProcSample {
    /// VmHWM: peak resident set since the process started, KiB.
    pub hwm_kib: u64,
    /// VmRSS: resident set now, KiB.
    pub rss_kib: u64,
}

pub fn proc_status(pid: u32) -> Option<ProcSample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(ProcSample {
        hwm_kib: field("VmHWM:")?,
        rss_kib: field("VmRSS:").unwrap_or(0),
    })
}

/// CPU time (user + system) of a process in clock ticks, from /proc/PID/stat.
pub fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after it are fixed.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ... utime is field 14, stime 15 (1-based over the whole line).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks of a PostgreSQL cluster: the postmaster, every process it started (backends,
/// WAL writer, checkpointer, ...) and the children it has already reaped.
pub fn cluster_cpu_ticks(postmaster: i32) -> u64 {
    let own = |pid: &str| -> Option<(u64, i32, u64)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid: i32 = fields.get(1)?.parse().ok()?;
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let cutime: u64 = fields.get(13)?.parse().ok()?;
        let cstime: u64 = fields.get(14)?.parse().ok()?;
        Some((utime + stime, ppid, cutime + cstime))
    };
    let mut total = match own(&postmaster.to_string()) {
        Some((ticks, _, reaped)) => ticks + reaped,
        None => return 0,
    };
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if let Some((ticks, ppid, _)) = own(pid) {
            if ppid == postmaster {
                total += ticks;
            }
        }
    }
    total
}

/// Busy (non-idle) ticks of all cores together, from the first line of /proc/stat.
pub fn machine_busy_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle))
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Watches a process's memory in the background: the highest VmHWM and VmRSS seen.
pub struct MemoryWatch {
    pub peak_hwm_kib: Arc<AtomicU64>,
    pub peak_rss_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl MemoryWatch {
    pub fn start(pid: u32) -> Self {
        let peak_hwm_kib = Arc::new(AtomicU64::new(0));
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, r, s) = (peak_hwm_kib.clone(), peak_rss_kib.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(p) = proc_status(pid) {
                    h.fetch_max(p.hwm_kib, Ordering::Relaxed);
                    r.fetch_max(p.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self {
            peak_hwm_kib,
            peak_rss_kib,
            stop,
        }
    }

    /// Takes one more sample now (the process is still alive) and returns the peak VmHWM, KiB.
    pub fn sample_now(&self, pid: u32) -> u64 {
        if let Some(p) = proc_status(pid) {
            self.peak_hwm_kib.fetch_max(p.hwm_kib, Ordering::Relaxed);
            self.peak_rss_kib.fetch_max(p.rss_kib, Ordering::Relaxed);
        }
        self.peak_hwm_kib.load(Ordering::Relaxed)
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub struct ImportResult {
    pub seconds: f64,
    /// Highest VmHWM seen while it ran (sampled, so a lower bound), KiB.
    pub peak_kib: u64,
    pub stdout: String,
}

/// Runs `biller-inbox accounts import FILE --config CFG` and times it.
pub async fn import(binary: &Path, work: &Workdir) -> Result<ImportResult, String> {
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("accounts")
        .arg("import")
        .arg(work.accounts())
        .arg("--config")
        .arg(work.config())
        .current_dir(work.server_dir())
        .env_remove("RUST_LOG")
        .env_remove("BILLER_INBOX_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let watch = child.id().map(MemoryWatch::start);
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("import did not finish: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_kib = watch.map(|w| w.peak_hwm_kib.load(Ordering::Relaxed)).unwrap_or(0);
    if !output.status.success() {
        return Err(format!(
            "accounts import failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(ImportResult {
        seconds,
        peak_kib,
        stdout: String::from_utf8_lossy(&output.stdout).trim().to_string(),
    })
}

/// The running server. Killed when dropped (also when the bench fails or is interrupted).
pub struct Server {
    child: Child,
    pub pid: u32,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub memory: MemoryWatch,
}

impl Server {
    pub async fn start(binary: &Path, work: &Workdir) -> Result<Self, String> {
        Self::start_logging_to(binary, work, &work.log()).await
    }

    /// A server whose log goes to `log_path` (replicas beside the first one).
    pub async fn start_logging_to(binary: &Path, work: &Workdir, log_path: &Path) -> Result<Self, String> {
        let log = std::fs::File::create(log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(work.config())
            .current_dir(work.server_dir())
            .env_remove("RUST_LOG")
            .env_remove("BILLER_INBOX_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe to the server")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(300), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix(LISTENING_PREFIX) {
                    return Some(rest.trim().trim_end_matches('/').to_string());
                }
            }
            None
        })
        .await
        .map_err(|_| "the server did not print its address within 300 s".to_string())?;
        let Some(addr) = addr else {
            let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
            return Err(format!(
                "the server exited before listening ({status}); its log:\n{}",
                work.log_tail(20)
            ));
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let memory = MemoryWatch::start(pid);
        Ok(Self {
            child,
            pid,
            addr,
            memory,
        })
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Stops the server as an operator would (SIGTERM: it finishes what it holds and closes the
    /// store cleanly, so a kept store opens without a crash repair), killed after 120 s.
    pub async fn stop_cleanly(mut self) {
        // SAFETY: kill(2) on the PID of our own child, which we have not yet waited for.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("   (the server did not stop within 120 s of SIGTERM: killed)");
            self.stop().await;
        }
    }
}

/// The fsync counters of `/metrics` at one moment.
#[derive(Clone, Copy, Default, Debug)]
pub struct FsyncCounters {
    /// Requests made durable (sum of batch sizes).
    pub requests: f64,
    /// Flushes (fsyncs).
    pub flushes: f64,
    /// Seconds spent flushing.
    pub flush_seconds: f64,
    /// Cumulative bucket counts of the batch size histogram: (upper bound, count).
    pub batch_buckets: [(f64, f64); 16],
    pub bucket_len: usize,
}

impl FsyncCounters {
    pub fn parse(text: &str) -> Option<Self> {
        let mut c = Self::default();
        let mut seen = false;
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            match name {
                "biller_inbox_fsync_batch_size_sum" => {
                    c.requests = value;
                    seen = true;
                }
                "biller_inbox_fsync_batch_size_count" => c.flushes = value,
                "biller_inbox_fsync_duration_seconds_sum" => c.flush_seconds = value,
                _ => {
                    if let Some(le) = name
                        .strip_prefix("biller_inbox_fsync_batch_size_bucket{le=\"")
                        .and_then(|r| r.strip_suffix("\"}"))
                    {
                        let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                        if c.bucket_len < c.batch_buckets.len() {
                            c.batch_buckets[c.bucket_len] = (bound, value);
                            c.bucket_len += 1;
                        }
                    }
                }
            }
        }
        seen.then_some(c)
    }
}

/// What group commit did between two scrapes.
pub struct FsyncDelta {
    pub flushes: f64,
    pub requests: f64,
    pub flush_seconds: f64,
    /// Batch-size bucket shares: (upper bound, share of flushes in (previous bound, bound]).
    pub shares: Vec<(f64, f64)>,
}

impl FsyncDelta {
    pub fn between(a: &FsyncCounters, b: &FsyncCounters) -> Self {
        let flushes = b.flushes - a.flushes;
        let mut shares = Vec::new();
        let mut prev = 0.0;
        for i in 0..b.bucket_len.min(a.bucket_len) {
            let cumulative = b.batch_buckets[i].1 - a.batch_buckets[i].1;
            if flushes > 0.0 {
                shares.push((b.batch_buckets[i].0, (cumulative - prev) / flushes));
            }
            prev = cumulative;
        }
        Self {
            flushes,
            requests: b.requests - a.requests,
            flush_seconds: b.flush_seconds - a.flush_seconds,
            shares,
        }
    }

    pub fn mean_batch(&self) -> f64 {
        if self.flushes > 0.0 {
            self.requests / self.flushes
        } else {
            0.0
        }
    }

    pub fn mean_flush_ms(&self) -> f64 {
        if self.flushes > 0.0 {
            self.flush_seconds * 1e3 / self.flushes
        } else {
            0.0
        }
    }

    /// `≤1: 3%, ≤2: 10%, ...` over the buckets that hold any flush.
    pub fn distribution(&self) -> String {
        self.shares
            .iter()
            .filter(|(_, share)| *share > 0.0005)
            .map(|(bound, share)| {
                let b = if bound.is_infinite() {
                    "more".to_string()
                } else {
                    format!("≤{bound}")
                };
                format!("{b}: {:.0}%", share * 100.0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The group-commit counters of every replica (comma-separated addresses), added up.
pub async fn scrape_fsync_all(addrs: &str) -> Result<FsyncCounters, String> {
    let mut total: Option<FsyncCounters> = None;
    for addr in addrs.split(',') {
        let c = scrape_fsync(addr).await?;
        total = Some(match total {
            None => c,
            Some(mut t) => {
                t.requests += c.requests;
                t.flushes += c.flushes;
                t.flush_seconds += c.flush_seconds;
                for (mine, theirs) in t
                    .batch_buckets
                    .iter_mut()
                    .zip(c.batch_buckets.iter())
                    .take(t.bucket_len)
                {
                    mine.1 += theirs.1;
                }
                t
            }
        });
    }
    total.ok_or_else(|| "no server address".to_string())
}

pub async fn scrape_fsync(addr: &str) -> Result<FsyncCounters, String> {
    let (status, body) = one_shot(addr, &scenarios::get_request(addr, "/metrics")).await?;
    if status != 200 {
        return Err(format!("GET /metrics answered {status}"));
    }
    FsyncCounters::parse(&String::from_utf8_lossy(&body))
        .ok_or_else(|| "GET /metrics has no biller_inbox_fsync_batch_size".to_string())
}
