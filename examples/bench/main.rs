//! The benchmark command of issue 6 (docs/benchmark.md): the release server as a separate process
//! on a temp store with generated accounts, driven scenario by scenario at C keep-alive
//! connections by a small closed-loop load generator, every answer checked.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- [--accounts N] [--seconds S] \
//!     [--connections C] [--postings-for-search N]
//! ```
//!
//! Prints per scenario: requests, errors, throughput, p50/p99/max latency, the ratio to the
//! `GET /health/live` baseline of the same run and the CPU used by the server, the load generator
//! and everything else on the machine; then import time, peak server memory, cores, date and
//! commit, and a Markdown table for the README. Exit status: 0 when every answer was right, 1 when
//! any scenario had errors or the run failed, 2 on bad usage.

mod client;
// The tests' throwaway PostgreSQL (a cluster of this process, a fresh database per run).
#[path = "../../tests/api/pg.rs"]
mod pg;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use client::{drive, one_shot, Budget, RunResult, Scenario};
use server::{FsyncDelta, Server, Workdir};

const ALL_SCENARIOS: [&str; 6] = ["health", "lookup", "posting", "empayre", "search", "console"];

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Load-test the release biller-inbox binary (issue 6)")]
struct Args {
    /// Accounts generated and imported (timed) before the server starts.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    /// Seconds each timed scenario runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Concurrent keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Postings in the store before the search scenario; the store is topped up to this many by
    /// posting at full speed (reported as the sustained posting row).
    #[arg(long, default_value_t = 1_000_000)]
    postings_for_search: u64,
    /// Connections of the search scenario (1: the latency of one query at a time).
    #[arg(long, default_value_t = 1)]
    search_connections: usize,
    /// Empayre events signed ahead of their scenario; 0 sizes the pool from the measured posting
    /// rate (2x what postings reached over --seconds). A scenario that runs out stops early and
    /// says so.
    #[arg(long, default_value_t = 0)]
    empayre_pool: usize,
    /// Threads of the load generator (1 keeps it to one core, like `wrk -t1`).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Scenarios to run, comma-separated, from: health, lookup, posting, empayre, search, console
    /// (each console page at one connection; run it after search, which fills the store). Not in
    /// the default set.
    #[arg(long, value_delimiter = ',', default_value = "health,lookup,posting,empayre,search")]
    scenarios: Vec<String>,
    /// Only write --accounts generated accounts to FILE (a JSON array if it ends in .json, JSON
    /// lines otherwise) and exit: the input of a stand-alone `accounts import` measurement.
    #[arg(long, value_name = "FILE")]
    write_accounts: Option<PathBuf>,
    /// The server binary (default: target/<profile>/biller-inbox next to this example).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Measure a binary older than src/ (normally refused: it would not be the code you see).
    #[arg(long)]
    allow_stale_binary: bool,
    /// Stores to measure, comma-separated, one after the other in this run: sled, postgres.
    /// PostgreSQL is the server named by --postgres-url, or else a throwaway cluster the bench
    /// starts from the installed server programs as the tests do (initdb in a temp folder, a
    /// free loopback port, fsync and synchronous_commit on, stopped at the end); a fresh
    /// database per target. The cluster's CPU is shown as "database".
    #[arg(long, value_delimiter = ',', default_value = "sled")]
    backend: Vec<String>,
    /// With postgres: how many replicas (server processes on one database) to measure,
    /// comma-separated (e.g. 1,2: one run each). Connections are spread round-robin over them.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    replicas: Vec<usize>,
    /// With postgres: a server to use instead of a throwaway cluster,
    /// `postgres://USER[:PASSWORD]@HOST:PORT` with a role that may create databases (the bench
    /// creates one per target and drops it at the end). Default: BILLER_INBOX_TEST_PG_URL.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Run the server over this file as its config/default.toml instead of the repository's:
    /// to measure an older binary, which refuses configuration keys it does not know, with a
    /// copy that leaves them out (use the same file for every binary of a comparison).
    #[arg(long, value_name = "FILE")]
    demo_config: Option<PathBuf>,
    /// Keep the sled store in DIR (DIR/store, with DIR/bench-fill.txt saying what it holds)
    /// instead of a temp dir, and reuse it when DIR already holds one: the import is skipped and
    /// the search top-up only posts what the last day lacks (a 1M fill takes minutes). The
    /// server is stopped with SIGTERM so the store is closed cleanly. Delete DIR when done.
    #[arg(long, value_name = "DIR")]
    keep_store: Option<PathBuf>,
}

/// One store set-up measured in a run.
struct Target {
    label: String,
    postgres: bool,
    replicas: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = validate(&args) {
        eprintln!("bench: {e}");
        return ExitCode::from(2);
    }
    if let Some(url) = &args.postgres_url {
        // Read by the tests' PostgreSQL helper (pg.rs), before any thread exists.
        std::env::set_var("BILLER_INBOX_TEST_PG_URL", url);
    }
    let runtime = if args.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: error: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&args) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    // Everything run() owned (server process, temp dir) is dropped by now: killed and removed.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn targets(args: &Args) -> Vec<Target> {
    let mut targets = Vec::new();
    for backend in &args.backend {
        if backend == "postgres" {
            for &replicas in &args.replicas {
                targets.push(Target {
                    label: format!("postgres x{replicas}"),
                    postgres: true,
                    replicas,
                });
            }
        } else {
            targets.push(Target {
                label: "sled".into(),
                postgres: false,
                replicas: 1,
            });
        }
    }
    targets
}

fn validate(args: &Args) -> Result<(), String> {
    if let Some(b) = args.backend.iter().find(|b| *b != "sled" && *b != "postgres") {
        return Err(format!("--backend {b:?}: must be sled or postgres"));
    }
    if args.replicas.iter().any(|&r| r == 0 || r > 16) {
        return Err("--replicas must be between 1 and 16".into());
    }
    if args.accounts == 0 {
        return Err("--accounts must be at least 1".into());
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err("--seconds must be a positive number".into());
    }
    if args.connections == 0 || args.search_connections == 0 || args.client_threads == 0 {
        return Err("--connections, --search-connections and --client-threads must be at least 1".into());
    }
    if args.keep_store.is_some() && (args.backend.len() != 1 || args.backend[0] != "sled") {
        return Err("--keep-store keeps a sled store: use it with --backend sled only".into());
    }
    for s in &args.scenarios {
        if !ALL_SCENARIOS.contains(&s.as_str()) {
            return Err(format!(
                "unknown scenario {s:?}; scenarios are {}",
                ALL_SCENARIOS.join(", ")
            ));
        }
    }
    Ok(())
}

/// CPU used between two moments: by the server, by this bench, by everything else.
struct CpuMark {
    server: u64,
    /// The PostgreSQL cluster the bench started (0 without one).
    database: u64,
    bench: u64,
    busy: u64,
}

fn cpu_mark(server_pids: &[u32], database_pid: Option<i32>) -> CpuMark {
    let busy = server::machine_busy_ticks().unwrap_or(0);
    CpuMark {
        database: database_pid.map(server::cluster_cpu_ticks).unwrap_or(0),
        server: server_pids
            .iter()
            .map(|pid| server::proc_cpu_ticks(&pid.to_string()).unwrap_or(0))
            .sum(),
        bench: server::proc_cpu_ticks("self").unwrap_or(0),
        busy,
    }
}

/// Cores used (server, database, bench, others) between two marks.
#[derive(Clone, Copy, Default)]
struct CpuUse {
    server: f64,
    database: f64,
    bench: f64,
    others: f64,
}

fn cpu_use(a: &CpuMark, b: &CpuMark, elapsed: Duration, ticks_per_sec: f64) -> CpuUse {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let cores = |t: u64| t as f64 / ticks_per_sec / secs;
    let server = cores(b.server.saturating_sub(a.server));
    let database = cores(b.database.saturating_sub(a.database));
    let bench = cores(b.bench.saturating_sub(a.bench));
    let busy = cores(b.busy.saturating_sub(a.busy));
    CpuUse {
        server,
        database,
        bench,
        others: (busy - server - database - bench).max(0.0),
    }
}

/// One line of the result table.
struct Row {
    name: String,
    what: String,
    connections: usize,
    result: Option<RunResult>,
    cpu: CpuUse,
    /// Shown in the table (route missing, pool exhausted, ...).
    notes: Vec<String>,
    fsync: Option<FsyncDelta>,
    /// Server VmHWM (peak resident memory so far) at the end of the scenario, KiB.
    hwm_kib: u64,
}

struct Bench<'a> {
    args: &'a Args,
    /// The first server: set-up, probes and `/metrics`.
    addr: String,
    /// Every replica, comma-separated: the load goes to all of them.
    addrs: String,
    pid: u32,
    /// Every replica's PID (their CPU is the server's).
    pids: Vec<u32>,
    /// The postmaster of the PostgreSQL cluster the bench started: its CPU is the database's.
    database_pid: Option<i32>,
    ticks_per_sec: f64,
    rows: Vec<Row>,
}

/// How one scenario is driven and labelled.
struct Spec<'s> {
    /// Short key (health, lookup, posting, ...).
    name: &'s str,
    /// The row's label: what is sent.
    what: &'s str,
    connections: usize,
    budget: Budget,
    /// Scrape the group-commit statistics of `/metrics` before and after.
    fsync: bool,
    /// Counts successful requests as they complete (for progress lines).
    progress: Option<Arc<AtomicU64>>,
}

impl Bench<'_> {
    /// Drives one scenario and records its row.
    async fn measure<S: Scenario>(&mut self, spec: Spec<'_>, scenario: Arc<S>) -> Result<usize, String> {
        let Spec {
            name,
            what,
            connections,
            budget,
            fsync: with_fsync,
            progress,
        } = spec;
        let budget_text = match budget {
            Budget::Time(d) => format!("{} s", d.as_secs_f64()),
            Budget::Count(n) => format!("{} requests", thousands(n)),
        };
        println!("\n== {name}: {what}, {connections} connections, {budget_text}");
        let before_fsync = if with_fsync {
            server::scrape_fsync_all(&self.addrs)
                .await
                .map_err(|e| eprintln!("   (no fsync statistics: {e})"))
                .ok()
        } else {
            None
        };
        let mark = cpu_mark(&self.pids, self.database_pid);
        let started = Instant::now();
        let result = drive(&self.addrs, connections, budget, scenario, progress).await?;
        let cpu = cpu_use(
            &mark,
            &cpu_mark(&self.pids, self.database_pid),
            started.elapsed(),
            self.ticks_per_sec,
        );
        let fsync = match before_fsync {
            Some(a) => match server::scrape_fsync_all(&self.addrs).await {
                Ok(b) => Some(FsyncDelta::between(&a, &b)),
                Err(e) => {
                    eprintln!("   (no fsync statistics: {e})");
                    None
                }
            },
            None => None,
        };
        let mut notes = Vec::new();
        if result.errors > 0 {
            notes.push(format!("**{} ERRORS**", thousands(result.errors)));
        }
        if result.exhausted {
            notes.push(format!(
                "pre-signed pool ran out after {:.1} s",
                result.elapsed.as_secs_f64()
            ));
        }
        let row = Row {
            name: name.to_string(),
            what: what.to_string(),
            connections,
            result: Some(result),
            cpu,
            notes,
            fsync,
            hwm_kib: server::proc_status(self.pid).map(|p| p.hwm_kib).unwrap_or(0),
        };
        print_row_details(&row, self.baseline());
        self.rows.push(row);
        Ok(self.rows.len() - 1)
    }

    /// The baseline throughput, and its connection count (a ratio is only quoted for rows with
    /// the same number of connections).
    fn baseline(&self) -> Option<(f64, usize)> {
        self.rows
            .iter()
            .find(|r| r.name == "health")
            .and_then(|r| r.result.as_ref().map(|x| (x.throughput(), r.connections)))
    }

    fn ok_of(&self, name: &str) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.result.as_ref())
            .map(|r| r.ok)
            .sum()
    }

    fn check_alive(&self, servers: &mut [Server], work: &Workdir) -> Result<(), String> {
        if servers.iter_mut().all(Server::alive) {
            Ok(())
        } else {
            Err(format!("a server died; the first one's log:\n{}", work.log_tail(30)))
        }
    }
}

fn ratio_to(baseline: Option<(f64, usize)>, row: &Row, r: &RunResult) -> Option<f64> {
    match baseline {
        Some((b, conns)) if b > 0.0 && conns == row.connections => Some(r.throughput() / b),
        _ => None,
    }
}

fn print_row_details(row: &Row, baseline: Option<(f64, usize)>) {
    let Some(r) = &row.result else { return };
    let ratio = match ratio_to(baseline, row, r) {
        Some(x) if row.name != "health" => format!(", {x:.3}x baseline"),
        _ => String::new(),
    };
    println!(
        "   {} requests, {} errors in {:.1} s: {} req/s{ratio}; latency p50 {} ms, p99 {} ms, max {} ms",
        thousands(r.requests()),
        thousands(r.errors),
        r.elapsed.as_secs_f64(),
        thousands(r.throughput().round() as u64),
        ms(r.hist.value_at_quantile(0.5)),
        ms(r.hist.value_at_quantile(0.99)),
        ms(r.hist.max()),
    );
    println!(
        "   CPU (cores): server {:.2}, database {:.2}, load generator {:.2}, everything else {:.2}; server peak RSS so far {} MiB",
        row.cpu.server,
        row.cpu.database,
        row.cpu.bench,
        row.cpu.others,
        row.hwm_kib / 1024
    );
    if let Some(f) = &row.fsync {
        println!(
            "   group commit: {} fsyncs ({:.0}/s), {:.1} requests per fsync on average, {:.2} ms per fsync; batch sizes {}",
            thousands(f.flushes as u64),
            f.flushes / r.elapsed.as_secs_f64().max(1e-9),
            f.mean_batch(),
            f.mean_flush_ms(),
            f.distribution()
        );
    }
    if r.errors > 0 {
        println!(
            "   !!! {} ERRORS in {} — answers were wrong or missing:",
            thousands(r.errors),
            row.name
        );
        for (message, n) in &r.error_samples {
            println!("   !!!   {n} x {message}");
        }
    }
    if r.exhausted {
        println!("   !!! the pre-signed pool ran out: throughput is over the shorter time; raise --empayre-pool");
    }
}

async fn run(args: &Args) -> Result<bool, String> {
    if let Some(path) = &args.write_accounts {
        let t = Instant::now();
        let bytes = server::write_accounts_file(path, args.accounts)?;
        println!(
            "{}: {} accounts, {:.1} MB, written in {:.1} s",
            path.display(),
            thousands(args.accounts),
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        return Ok(true);
    }
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => server::default_binary()?,
    };
    let built = server::check_binary(&binary, args.allow_stale_binary)?;
    let root = server::repo_root();
    let started_at = chrono::Utc::now();
    let cores = nproc();
    let commit = git_commit(&root);

    println!(
        "biller-inbox bench: {} UTC, {cores} cores (nproc), {commit}",
        started_at.format("%Y-%m-%d %H:%M:%S")
    );
    println!(
        "server binary: {} (built {} UTC)",
        binary.display(),
        chrono::DateTime::<chrono::Utc>::from(built).format("%Y-%m-%d %H:%M:%S")
    );
    if let Some(file) = &args.demo_config {
        println!("demo config: {} (as the server's config/default.toml)", file.display());
    }
    println!(
        "load: {} connections, {} s per scenario, {} load generator thread(s); {} accounts; search over {} postings",
        args.connections,
        args.seconds,
        args.client_threads,
        thousands(args.accounts),
        thousands(args.postings_for_search)
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average before the run: {}",
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }

    let mut all_ok = true;
    let mut compared = Vec::new();
    for target in targets(args) {
        println!("\n# {}", target.label);
        let (ok, rows) = run_target(args, &binary, &target, &commit, cores, started_at).await?;
        all_ok &= ok;
        compared.push((target.label, rows));
    }
    if compared.len() > 1 {
        print_side_by_side(&compared);
    }
    Ok(all_ok)
}

/// Throughput and p99 of each scenario of one target, for the side-by-side table.
type Compared = Vec<(String, Option<(f64, u64)>)>;

/// One target (a store set-up) measured scenario by scenario; prints its table.
async fn run_target(
    args: &Args,
    binary: &std::path::Path,
    target: &Target,
    commit: &str,
    cores: usize,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<(bool, Compared), String> {
    let selected = |s: &str| args.scenarios.iter().any(|x| x == s);
    let seconds = Duration::from_secs_f64(args.seconds);
    let work = Workdir::new(args.demo_config.as_deref(), args.keep_store.as_deref())?;
    let database = if target.postgres {
        let db = tokio::task::spawn_blocking(pg::test_database)
            .await
            .map_err(|e| format!("PostgreSQL could not be started: {e}"))?;
        println!("PostgreSQL database {} (fsync on)", db.name);
        Some(db)
    } else {
        None
    };
    work.write_config(database.as_ref().map(|d| d.url.as_str()))?;
    let kept = work.kept_fill()?;
    let import_seconds = match kept {
        Some(fill) => {
            if fill.accounts != args.accounts {
                return Err(format!(
                    "the kept store {} holds {} accounts, this run asks for {}: pass --accounts {} or another directory",
                    work.store().display(),
                    fill.accounts,
                    args.accounts,
                    fill.accounts
                ));
            }
            println!(
                "\nkept store {}: {} accounts imported before, postings up to id {}: no import",
                work.store().display(),
                thousands(fill.accounts),
                fill.last_posting_id
            );
            0.0
        }
        None => {
            let t = Instant::now();
            let bytes = work.write_accounts(args.accounts)?;
            println!(
                "\naccounts file: {} accounts, {:.1} MB of JSON lines, written in {:.1} s",
                thousands(args.accounts),
                bytes as f64 / 1e6,
                t.elapsed().as_secs_f64()
            );
            println!("importing: biller-inbox accounts import FILE --config CFG ...");
            let import = server::import(binary, &work).await?;
            println!(
                "import: {} accounts in {:.1} s ({} accounts/s); import process peak RSS ≥ {} MiB{}",
                thousands(args.accounts),
                import.seconds,
                thousands((args.accounts as f64 / import.seconds.max(1e-9)) as u64),
                import.peak_kib / 1024,
                if import.stdout.is_empty() {
                    String::new()
                } else {
                    format!("; it said: {}", import.stdout.replace('\n', " / "))
                }
            );
            work.note_fill(server::Fill {
                accounts: args.accounts,
                last_posting_id: 0,
                last_event_id: 0,
            })?;
            import.seconds
        }
    };
    // A kept store's next ids start above what earlier runs used (with a margin for requests
    // sent but not answered when a run was cut short).
    let (first_posting_id, first_event_id) = match kept {
        Some(fill) => (fill.last_posting_id + 10_000, fill.last_event_id + 10_000),
        None => (0, 0),
    };

    let opened = Instant::now();
    let mut servers = vec![Server::start(binary, &work).await?];
    for i in 1..target.replicas {
        let log = work.path().join(format!("server-{}.log", i + 1));
        servers.push(Server::start_logging_to(binary, &work, &log).await?);
    }
    let addr = servers[0].addr.clone();
    for s in &servers {
        println!("server: pid {}, listening on http://{}", s.pid, s.addr);
        preflight(&s.addr).await?;
    }
    println!(
        "server(s) started and ready in {:.1} s (opening the store included)",
        opened.elapsed().as_secs_f64()
    );

    let mut bench = Bench {
        args,
        addr: addr.clone(),
        addrs: servers.iter().map(|s| s.addr.as_str()).collect::<Vec<_>>().join(","),
        pid: servers[0].pid,
        pids: servers.iter().map(|s| s.pid).collect(),
        database_pid: if target.postgres { pg::cluster_pid() } else { None },
        ticks_per_sec: server::clock_ticks(),
        rows: Vec::new(),
    };
    let next_payment_id = Arc::new(AtomicU64::new(first_posting_id));
    let last_event_id = Arc::new(AtomicU64::new(first_event_id));
    // After each scenario that posts: the kept store's note says which ids are used.
    let note_fill = |work: &Workdir| {
        work.note_fill(server::Fill {
            accounts: args.accounts,
            last_posting_id: next_payment_id.load(Ordering::Relaxed),
            last_event_id: last_event_id.load(Ordering::Relaxed),
        })
    };

    if selected("health") {
        let s = Arc::new(scenarios::Health::new(&addr));
        bench
            .measure(
                Spec {
                    name: "health",
                    what: "GET /health/live (baseline)",
                    connections: args.connections,
                    budget: Budget::Time(seconds),
                    fsync: false,
                    progress: None,
                },
                s,
            )
            .await?;
        bench.check_alive(&mut servers, &work)?;
    }
    if selected("lookup") {
        let s = Arc::new(scenarios::Lookup::new(&addr, args.accounts));
        bench
            .measure(
                Spec {
                    name: "lookup",
                    what: "POST /mpacustomers by random account number",
                    connections: args.connections,
                    budget: Budget::Time(seconds),
                    fsync: false,
                    progress: None,
                },
                s,
            )
            .await?;
        bench.check_alive(&mut servers, &work)?;
    }
    if selected("posting") {
        let s = Arc::new(scenarios::Payment::new(&addr, args.accounts, next_payment_id.clone()));
        bench
            .measure(
                Spec {
                    name: "posting",
                    what: "POST /paymentposting, new ids, random accounts (durable)",
                    connections: args.connections,
                    budget: Budget::Time(seconds),
                    fsync: true,
                    progress: None,
                },
                s,
            )
            .await?;
        note_fill(&work)?;
        bench.check_alive(&mut servers, &work)?;
    }
    if selected("empayre") {
        let pool_size = if args.empayre_pool > 0 {
            args.empayre_pool
        } else {
            let posting_rate = bench
                .rows
                .iter()
                .find(|r| r.name == "posting")
                .and_then(|r| r.result.as_ref())
                .map(RunResult::throughput)
                .unwrap_or(5_000.0);
            ((posting_rate * args.seconds * 2.0) as usize).max(2_000)
        };
        let first = last_event_id.load(Ordering::Relaxed);
        let pool = sign_pool(&addr, pool_size, args.accounts, first).await?;
        last_event_id.store(first + pool.len() as u64, Ordering::Relaxed);
        let s = Arc::new(scenarios::Empayre::new(pool));
        bench
            .measure(
                Spec {
                    name: "empayre",
                    what: "POST /empayre/webhook, signed PaymentCaptured, new event ids (durable)",
                    connections: args.connections,
                    budget: Budget::Time(seconds),
                    fsync: true,
                    progress: None,
                },
                s,
            )
            .await?;
        bench.check_alive(&mut servers, &work)?;
    }
    if selected("search") {
        note_fill(&work)?;
        let searched = search(&mut bench, &next_payment_id).await;
        note_fill(&work)?;
        searched?;
        bench.check_alive(&mut servers, &work)?;
    }
    if selected("console") {
        console(&mut bench).await?;
        bench.check_alive(&mut servers, &work)?;
    }

    let peak_hwm_kib = servers[0].memory.sample_now(servers[0].pid);
    let peak_rss_kib = servers[0].memory.peak_rss_kib.load(Ordering::Relaxed);
    for s in servers {
        if args.keep_store.is_some() {
            s.stop_cleanly().await;
        } else {
            s.stop().await;
        }
    }
    drop(work);
    if let Some(db) = database {
        if let Err(e) = tokio::task::spawn_blocking(move || pg::drop_database(&db))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        {
            eprintln!("   (could not drop the benchmark database: {e})");
        }
    }

    let any_errors = bench
        .rows
        .iter()
        .any(|r| r.result.as_ref().is_some_and(|x| x.errors > 0));
    print_summary(
        &bench,
        &Summary {
            label: target.label.clone(),
            date: started_at.format("%Y-%m-%d").to_string(),
            cores,
            commit: commit.to_string(),
            import_seconds,
            peak_hwm_kib,
            peak_rss_kib,
        },
    );
    if any_errors {
        println!("\n!!! SOME SCENARIOS HAD ERRORS: see the !!! lines above. Their numbers are not valid measurements.");
    }
    let compared = bench
        .rows
        .iter()
        .map(|r| {
            let figures = r
                .result
                .as_ref()
                .map(|x| (x.throughput(), x.hist.value_at_quantile(0.99)));
            // Pages are compared by name: their paths name a record of the run.
            let key = if is_page(&r.name) {
                r.name.clone()
            } else {
                r.what.clone()
            };
            (key, figures)
        })
        .collect();
    Ok((!any_errors, compared))
}

/// Every target's throughput and p99 per scenario, in one table.
fn print_side_by_side(compared: &[(String, Compared)]) {
    println!("\n## Side by side (this run): throughput req/s (p99 ms)\n");
    let labels: Vec<&str> = compared.iter().map(|(l, _)| l.as_str()).collect();
    println!("| Scenario | {} |", labels.join(" | "));
    println!("|---|{}", "--:|".repeat(labels.len()));
    let mut scenarios: Vec<&str> = Vec::new();
    for (_, rows) in compared {
        for (what, _) in rows {
            if !scenarios.contains(&what.as_str()) {
                scenarios.push(what);
            }
        }
    }
    for what in scenarios {
        let cells: Vec<String> = compared
            .iter()
            .map(
                |(_, rows)| match rows.iter().find(|(w, _)| w == what).and_then(|(_, f)| *f) {
                    Some((rate, p99)) => format!("{} ({})", thousands(rate.round() as u64), ms(p99)),
                    None => "–".into(),
                },
            )
            .collect();
        println!("| {what} | {} |", cells.join(" | "));
    }
}

/// Fails early, with the answer, when the server is not set up as the bench expects.
async fn preflight(addr: &str) -> Result<(), String> {
    let health = scenarios::Health::new(addr);
    let mut req = Vec::new();
    health.prepare(&mut client::Rng::new(1), &mut req);
    let (status, body) = one_shot(addr, &req).await?;
    health
        .check(&(), status, &body)
        .map_err(|e| format!("GET /health/live is not answering as expected: {e}"))?;
    let lookup = scenarios::Lookup::new(addr, 1);
    let mut req = Vec::new();
    let expect = lookup.prepare(&mut client::Rng::new(1), &mut req).unwrap_or(0);
    let (status, body) = one_shot(addr, &req).await?;
    lookup.check(&expect, status, &body).map_err(|e| {
        format!(
            "a lookup of the first imported account failed ({e}); is the demo Orbipay client in config/default.toml?"
        )
    })
}

/// Signs `n` Empayre events before the scenario (RSA signing is the platform's cost, not ours),
/// on every core while the server idles.
async fn sign_pool(host: &str, n: usize, accounts: u64, first_id: u64) -> Result<Vec<Vec<u8>>, String> {
    let key_path = server::repo_root().join("fixtures/keys/empayre_test_private.pem");
    let pem = std::fs::read_to_string(&key_path).map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
    let signer = biller_inbox::empayre::signature::BodySigner::from_pem(&pem)
        .map_err(|e| format!("cannot use {}: {e}", key_path.display()))?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "\nsigning {} Empayre events ahead of the scenario on {threads} threads ...",
        thousands(n as u64)
    );
    let host = host.to_string();
    let started = Instant::now();
    let pool = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>, String> {
        let per_thread = n.div_ceil(threads);
        let chunks: Vec<Result<Vec<Vec<u8>>, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let signer = &signer;
                    let host = &host;
                    scope.spawn(move || {
                        let mut rng = client::Rng::new(t as u64 + 77);
                        let first = t * per_thread;
                        let last = ((t + 1) * per_thread).min(n);
                        let mut out = Vec::with_capacity(last.saturating_sub(first));
                        for i in first..last {
                            let body = scenarios::empayre_event(first_id + i as u64 + 1, rng.below(accounts));
                            let signature = signer.sign_header(&body).map_err(|e| format!("signing failed: {e}"))?;
                            out.push(scenarios::empayre_request(host, &body, &signature));
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a signing thread panicked".into())))
                .collect()
        });
        let mut pool = Vec::with_capacity(n);
        for chunk in chunks {
            pool.extend(chunk?);
        }
        Ok(pool)
    })
    .await
    .map_err(|e| format!("signing task failed: {e}"))??;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "signed {} events in {secs:.1} s ({} signatures/s)",
        thousands(pool.len() as u64),
        thousands((pool.len() as f64 / secs.max(1e-9)) as u64)
    );
    Ok(pool)
}

/// The records of the last day as the search counts them (None: the binary has no search yet).
async fn records_in_last_day(addr: &str) -> Result<Option<u64>, String> {
    let body = scenarios::search_body(chrono::Utc::now() + chrono::Duration::seconds(1));
    let (status, answer) = one_shot(addr, &scenarios::search_request(addr, &body)).await?;
    if status != 200 {
        return Ok(None);
    }
    let a: scenarios::SearchAnswer =
        serde_json::from_slice(&answer).map_err(|e| format!("the search answer does not parse: {e}"))?;
    Ok(Some(a.total_count))
}

/// Tops the store up to --postings-for-search postings in the last day at full speed (the
/// sustained posting row; on a kept store only what the day lacks), then searches the day.
async fn search(bench: &mut Bench<'_>, next_payment_id: &Arc<AtomicU64>) -> Result<(), String> {
    let args = bench.args;
    let addr = bench.addr.clone();
    let made = bench.ok_of("posting") + bench.ok_of("empayre");
    let in_window = records_in_last_day(&addr).await?.unwrap_or(made).max(made);
    if in_window > made {
        println!(
            "\nthe (kept) store holds {} records received in the last day",
            thousands(in_window)
        );
    }
    let missing = args.postings_for_search.saturating_sub(in_window);
    if missing > 0 {
        let progress = Arc::new(AtomicU64::new(0));
        let ticker = {
            let progress = progress.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_secs(15));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let done = progress.load(Ordering::Relaxed);
                    println!(
                        "   ... {} of {} postings ({} /s)",
                        thousands(done),
                        thousands(missing),
                        thousands((done as f64 / started.elapsed().as_secs_f64()) as u64)
                    );
                }
            })
        };
        let s = Arc::new(scenarios::Payment::new(&addr, args.accounts, next_payment_id.clone()));
        let what = format!(
            "POST /paymentposting, sustained, tops the store up to {} postings",
            thousands(args.postings_for_search)
        );
        let measured = bench
            .measure(
                Spec {
                    name: "posting (sustained)",
                    what: &what,
                    connections: args.connections,
                    budget: Budget::Count(missing),
                    fsync: true,
                    progress: Some(progress),
                },
                s,
            )
            .await;
        ticker.abort();
        measured?;
    }
    let orbipay = bench.ok_of("posting") + bench.ok_of("posting (sustained)");
    let empayre = bench.ok_of("empayre");
    let body = scenarios::search_body(chrono::Utc::now() + chrono::Duration::seconds(1));
    let request = scenarios::search_request(&addr, &body);
    let what = "POST /admin/postings/search, received_at in the last day, size 50, newest first";
    // Probe once: a server without the route yet gets a "route missing" row, not a failed run.
    let (status, answer) = one_shot(&addr, &request).await?;
    if status == 404 || status == 405 {
        println!("\n== search: {what}\n   route missing: POST /admin/postings/search answered {status}; not measured");
        bench.rows.push(Row {
            name: "search".into(),
            what: what.into(),
            connections: args.search_connections,
            result: None,
            cpu: CpuUse::default(),
            notes: vec![format!("route missing (HTTP {status}), not measured")],
            fsync: None,
            hwm_kib: 0,
        });
        return Ok(());
    }
    // Both channels' records are in the search (docs/operations.md, the postings search), and all of them are from the run.
    let s = scenarios::Search::new(request, (orbipay + empayre).max(in_window));
    match s.check_answer(status, &answer) {
        Ok(a) => println!(
            "\nsearch probe: totalCount {} (postings made: {} Orbipay + {} Empayre); request body {body}",
            thousands(a.total_count),
            thousands(orbipay),
            thousands(empayre)
        ),
        Err(e) => println!("\nsearch probe: WRONG ANSWER: {e}"),
    }
    bench
        .measure(
            Spec {
                name: "search",
                what,
                connections: args.search_connections,
                budget: Budget::Time(Duration::from_secs_f64(args.seconds)),
                fsync: false,
                progress: None,
            },
            Arc::new(s),
        )
        .await?;
    Ok(())
}

/// Each console page as an operator opens it, one request at a time on a signed-in session:
/// the server time of a page (loopback adds a few tens of microseconds) on the store as the
/// scenarios before left it (after `search`: `--postings-for-search` records).
async fn console(bench: &mut Bench<'_>) -> Result<(), String> {
    let addr = bench.addr.clone();
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let cookie_of = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .map(str::to_string)
    };
    let form = http
        .get(format!("{base}/console/sign-in"))
        .send()
        .await
        .map_err(|e| format!("console sign-in form: {e}"))?;
    let pre = cookie_of(&form, "console_sign_in").ok_or("the sign-in form set no cookie")?;
    let page = form.text().await.map_err(|e| e.to_string())?;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("the sign-in form has no csrf field")?
        .to_string();
    let signed_in = http
        .post(format!("{base}/console/sign-in"))
        .header("cookie", pre)
        .form(&[("token", scenarios::ADMIN_TOKEN), ("csrf", csrf.as_str())])
        .send()
        .await
        .map_err(|e| format!("console sign-in: {e}"))?;
    let session = cookie_of(&signed_in, "console_session").ok_or("console sign-in gave no session")?;
    // A record and its account to open: the newest record of the last day.
    let newest = http
        .post(format!("{base}/admin/postings/search"))
        .bearer_auth(scenarios::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(scenarios::search_body(
            chrono::Utc::now() + chrono::Duration::seconds(1),
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<serde_json::Value>()
        .await
        .map_err(|e| e.to_string())?;
    let record = &newest["records"][0];
    let (kind, id, account) = (
        record["kind"].as_str().unwrap_or("payment").to_string(),
        record["id"].as_str().unwrap_or("none").to_string(),
        record["account_number"].as_str().unwrap_or("none").to_string(),
    );
    println!(
        "\nconsole: signed in; the store holds {} records in the last day; opening {kind} {id} of account {account}",
        newest["totalCount"]
    );
    // Every kind of search the console form (src/console/pages/search.rs) can make over its
    // default window (the last day), each named by what it asks; then the other pages.
    let short_account = &account[..account.len().saturating_sub(2)];
    let id_start = &id[..id.len().min(4)];
    let pages: Vec<(&str, String)> = vec![
        ("console overview", "/console".to_string()),
        ("console search", "/console/search".to_string()),
        // Orders other than newest first, over the whole day; a deep page (200 of 50 rows).
        (
            "console search (received ascending)",
            "/console/search?sort=received_at&dir=asc".into(),
        ),
        ("console search (received, page 200)", "/console/search?page=200".into()),
        (
            "console search (by amount, descending)",
            "/console/search?sort=amount&dir=desc".into(),
        ),
        (
            "console search (by amount, ascending)",
            "/console/search?sort=amount&dir=asc".into(),
        ),
        (
            "console search (by amount, descending, page 200)",
            "/console/search?sort=amount&dir=desc&page=200".into(),
        ),
        (
            "console search (by amount, ascending, page 200)",
            "/console/search?sort=amount&dir=asc&page=200".into(),
        ),
        ("console search (by status)", "/console/search?sort=status".into()),
        (
            "console search (by status, ascending)",
            "/console/search?sort=status&dir=asc".into(),
        ),
        (
            "console search (by status, page 200)",
            "/console/search?sort=status&dir=desc&page=200".into(),
        ),
        (
            "console search (by status, ascending, page 200)",
            "/console/search?sort=status&dir=asc&page=200".into(),
        ),
        (
            "console search (by account)",
            "/console/search?sort=account_number&dir=asc".into(),
        ),
        (
            "console search (by account, descending)",
            "/console/search?sort=account_number&dir=desc".into(),
        ),
        (
            "console search (by account, page 200)",
            "/console/search?sort=account_number&dir=desc&page=200".into(),
        ),
        (
            "console search (by account, ascending, page 200)",
            "/console/search?sort=account_number&dir=asc&page=200".into(),
        ),
        // One filter of each kind: most records match, few do, none does, a range, a deep page.
        ("console search (channel)", "/console/search?channel=orbipay".into()),
        (
            "console search (channel, page 200)",
            "/console/search?channel=orbipay&page=200".into(),
        ),
        ("console search (kind)", "/console/search?kind=refund".into()),
        ("console search (kind payment)", "/console/search?kind=payment".into()),
        ("console search (status)", "/console/search?status=returned".into()),
        (
            "console search (statuses returned,declined)",
            "/console/search?status=returned,declined".into(),
        ),
        (
            "console search (amount range)",
            "/console/search?min_amount=0.50&max_amount=1.00".into(),
        ),
        (
            "console search (amount 100.00 to 200.00)",
            "/console/search?min_amount=100.00&max_amount=200.00".into(),
        ),
        (
            "console search (min amount 100.00)",
            "/console/search?min_amount=100.00".into(),
        ),
        (
            "console search (max amount 100.00)",
            "/console/search?max_amount=100.00".into(),
        ),
        (
            "console search (filtered)",
            "/console/search?channel=orbipay&min_amount=10.00".into(),
        ),
        (
            "console search (channel, status, amount range)",
            "/console/search?channel=orbipay&status=processed&min_amount=50.00&max_amount=150.00".into(),
        ),
        (
            "console search (status returned, by amount)",
            "/console/search?status=returned&sort=amount&dir=desc".into(),
        ),
        (
            "console search (min amount 100.00, by account, page 200)",
            "/console/search?min_amount=100.00&sort=account_number&dir=asc&page=200".into(),
        ),
        (
            "console search (account, by amount)",
            format!("/console/search?account={account}&sort=amount"),
        ),
        ("console search (id)", format!("/console/search?id={id}")),
        (
            "console search (confirmation)",
            format!("/console/search?confirmation=CONF{id}"),
        ),
        // `like` with a literal start: the id's first digits, the account without its last two
        // characters (about a hundred accounts of a hundred thousand).
        ("console search (id like)", format!("/console/search?id={id_start}%25")),
        (
            "console search (account like)",
            format!("/console/search?account={short_account}%25"),
        ),
        // `like` without a literal start: an account number's end (one account in a thousand),
        // a part of the id anywhere, a confirmation number's end.
        (
            "console search (account like %345)",
            "/console/search?account=%25345".into(),
        ),
        ("console search (id like %123%)", "/console/search?id=%25123%25".into()),
        (
            "console search (confirmation like %99)",
            "/console/search?confirmation=%2599".into(),
        ),
        ("console record", format!("/console/records/{kind}/{id}")),
        ("console account", format!("/console/accounts/{account}")),
        ("console unmatched", "/console/unmatched".to_string()),
        ("console quarantine", "/console/quarantine".to_string()),
        ("console refusals", "/console/refusals".to_string()),
    ];
    let budget = Budget::Time(Duration::from_secs_f64(bench.args.seconds.min(5.0)));
    for (name, path) in pages {
        let what = format!("GET {path} (signed in, one connection)");
        let s = Arc::new(scenarios::ConsolePage::new(&addr, &path, &session));
        bench
            .measure(
                Spec {
                    name,
                    what: &what,
                    connections: 1,
                    budget,
                    fsync: false,
                    progress: None,
                },
                s,
            )
            .await?;
    }
    // What the admin API filters on and the console form has no field for, over the same day.
    let param = |name: &str, method: &str, value: &str| serde_json::json!({"name": name, "method": method, "searchParameter": [value]});
    let api_searches = [
        ("admin search (currency EUR)", vec![param("currency", "=", "EUR")]),
        (
            "admin search (payment method visa_debit)",
            vec![param("payment_method", "=", "visa_debit")],
        ),
        (
            "admin search (client key)",
            vec![param("client_key", "=", scenarios::SECOND_CLIENT_KEY)],
        ),
        (
            "admin search (currency, payment method, client key)",
            vec![
                param("currency", "=", "EUR"),
                param("payment_method", "=", "ach"),
                param("client_key", "=", scenarios::SECOND_CLIENT_KEY),
            ],
        ),
    ];
    for (name, extra) in api_searches {
        let body = scenarios::filtered_search_body(chrono::Utc::now() + chrono::Duration::seconds(1), &extra);
        let what = format!("POST /admin/postings/search {body} (one connection)");
        let s = Arc::new(scenarios::Search::new(scenarios::search_request(&addr, &body), 0));
        bench
            .measure(
                Spec {
                    name,
                    what: &what,
                    connections: 1,
                    budget,
                    fsync: false,
                    progress: None,
                },
                s,
            )
            .await?;
    }
    Ok(())
}

struct Summary {
    label: String,
    date: String,
    cores: usize,
    commit: String,
    import_seconds: f64,
    peak_hwm_kib: u64,
    peak_rss_kib: u64,
}

fn print_summary(bench: &Bench, s: &Summary) {
    let args = bench.args;
    let baseline = bench.baseline();
    println!(
        "\n## Results: {} ({}, {} cores, {}; {} accounts, {} connections, {} s per scenario)\n",
        s.label,
        s.date,
        s.cores,
        s.commit,
        thousands(args.accounts),
        args.connections,
        args.seconds
    );
    println!(
        "| Scenario | Conns | Requests | Errors | Throughput (req/s) | vs. baseline | p50 (ms) | p99 (ms) | max (ms) \
         | CPU server / database / bench / other (cores) | Server peak RSS (MiB) | Notes |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for row in &bench.rows {
        let mut notes = row.notes.clone();
        if let Some(f) = &row.fsync {
            if f.flushes > 0.0 {
                notes.push(format!("{:.1} requests per fsync", f.mean_batch()));
            }
        }
        let notes = notes.join("; ");
        let Some(r) = &row.result else {
            println!(
                "| {} | {} | – | – | – | – | – | – | – | – | – | {notes} |",
                row.what, row.connections
            );
            continue;
        };
        let ratio = match ratio_to(baseline, row, r) {
            Some(x) if x >= 0.1 => format!("{x:.2}"),
            Some(x) => format!("{x:.3}"),
            None => "–".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {ratio} | {} | {} | {} | {:.2} / {:.2} / {:.2} / {:.2} | {} | {notes} |",
            row.what,
            row.connections,
            thousands(r.requests()),
            thousands(r.errors),
            thousands(r.throughput().round() as u64),
            ms(r.hist.value_at_quantile(0.5)),
            ms(r.hist.value_at_quantile(0.99)),
            ms(r.hist.max()),
            row.cpu.server,
            row.cpu.database,
            row.cpu.bench,
            row.cpu.others,
            row.hwm_kib / 1024,
        );
    }
    print_pages(bench);
    println!(
        "\nImport of {} accounts: {:.1} s. Server peak resident memory (VmHWM, whole run): {} MiB \
         (highest VmRSS sampled: {} MiB), store.cache_capacity_bytes at its default.",
        thousands(args.accounts),
        s.import_seconds,
        s.peak_hwm_kib / 1024,
        s.peak_rss_kib / 1024
    );
    println!(
        "Machine: {} cores (nproc), date {}, {}. Closed loop: each connection sends its next request \
         when the previous answer is in; latency is per successful request; \"other\" CPU is the rest \
         of the machine (other users).",
        s.cores, s.date, s.commit
    );
}

/// A row of the console scenario (a console page or an admin API search).
fn is_page(name: &str) -> bool {
    name.starts_with("console") || name.starts_with("admin search")
}

/// The console scenario's rows by name: latency and the server's CPU per request (the page's
/// server time, less sensitive to the rest of the machine than the latency).
fn print_pages(bench: &Bench) {
    let pages: Vec<&Row> = bench.rows.iter().filter(|r| is_page(&r.name)).collect();
    if pages.is_empty() {
        return;
    }
    println!("\n### Console pages (one connection each)\n");
    println!("| Page | Requests | p50 (ms) | p99 (ms) | max (ms) | server CPU per request (ms) | other CPU (cores) | Notes |");
    println!("|---|--:|--:|--:|--:|--:|--:|---|");
    for row in pages {
        let Some(r) = &row.result else { continue };
        let per_request = row.cpu.server * r.elapsed.as_secs_f64() * 1e3 / r.requests().max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {per_request:.2} | {:.2} | {} |",
            row.name,
            thousands(r.requests()),
            ms(r.hist.value_at_quantile(0.5)),
            ms(r.hist.value_at_quantile(0.99)),
            ms(r.hist.max()),
            row.cpu.others,
            row.notes.join("; ")
        );
    }
}

/// `commit abc123` plus a note when the working tree differs from it (the binary is built from
/// the working tree, not from the commit).
fn git_commit(root: &std::path::Path) -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=10", "HEAD"]) {
        Some(hash) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("commit {hash} + uncommitted changes")
            } else {
                format!("commit {hash}")
            }
        }
        None => "commit unknown (no git)".into(),
    }
}

/// `nproc` (the cores this process may use), or the standard library's view of it.
fn nproc() -> usize {
    std::process::Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0))
}

fn ms(micros: u64) -> String {
    let v = micros as f64 / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
