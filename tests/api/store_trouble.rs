//! Store trouble with the real binary: its store on a small tmpfs mounted in a private mount
//! namespace (`unshare -m`, held open by a `sleep` so the server can be restarted on the same
//! store with `nsenter`), then filled (through `/proc/PID/root`) or remounted read-only. Needs root
//! or CAP_SYS_ADMIN, as this machine kind and CI have; elsewhere the tests fail saying so.
//!
//! While the store cannot write, postings and events get 503 and readiness fails; nothing is
//! half-applied; once the disk is back the service recovers, without a restart (the store reopens
//! sled, which otherwise keeps the first I/O error of its log writer for the life of the `Db`)
//! and across one; the journal feed never shows an entry that could still vanish; a read-only
//! store stops start-up.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

const ADMIN: &str = "trouble-admin-token";

/// A private mount namespace with a tmpfs, kept alive by a `sleep` in it.
struct Namespace {
    holder: std::process::Child,
    mount: PathBuf,
    config: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Namespace {
    fn new(size: &str) -> Self {
        assert_private_mounts_work();
        let dir = tempfile::tempdir().expect("dir");
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).expect("mount point");
        let mut holder = std::process::Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={size} tmpfs '{}' && echo mounted && exec sleep 600",
                mount.display()
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("unshare runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("read");
        assert_eq!(line.trim(), "mounted", "the tmpfs did not mount in the namespace");
        let store = mount.join("store");
        // No free-disk threshold: what must fail is the store's own writing.
        let config = dir.path().join("test.toml");
        let text = format!(
            "[server]\nport = 0\nworkers = 2\n[store]\npath = \"{}\"\ncache_capacity_bytes = 16777216\n\
             min_free_bytes = 0\n[log]\nlevel = \"info\"\n[admin]\ntoken = \"{ADMIN}\"\n",
            store.display()
        );
        std::fs::write(&config, text).expect("config");
        let log = dir.path().join("server.log");
        Self {
            holder,
            mount,
            config,
            log,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A path inside the tmpfs, as seen from outside the namespace.
    fn inside(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{}/{name}", self.pid(), self.mount.display()))
    }

    /// The binary, serving on the store in the tmpfs.
    async fn serve(&self) -> Server {
        let mut command = tokio::process::Command::new("nsenter");
        command
            .args(["-t", &self.pid().to_string(), "-m"])
            // nsenter would start in the namespace's "/"; the demo config resolves from the repo.
            .arg(format!("--wd={}", env!("CARGO_MANIFEST_DIR")))
            .arg("--")
            .arg(binary())
            .args(["serve", "--config"])
            .arg(&self.config);
        let process = start_command(command, &self.log).await;
        let remote = Remote::new(&process.address, ADMIN);
        Server { process, remote }
    }

    /// Runs the server to its exit, for a store it must refuse: (exit status, stdout, stderr).
    async fn serve_to_exit(&self) -> (Option<i32>, String, String) {
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new("nsenter")
                .args(["-t", &self.pid().to_string(), "-m"])
                .arg(format!("--wd={}", env!("CARGO_MANIFEST_DIR")))
                .arg("--")
                .arg(binary())
                .args(["serve", "--config"])
                .arg(&self.config)
                .env_remove("RUST_LOG")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the server exits within 30 s")
        .expect("nsenter runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Fills the tmpfs to the last byte with a file of its own.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.inside("filler")).expect("filler file");
        for size in [64 * 1024, 4096, 1] {
            let chunk = vec![0u8; size];
            while file.write_all(&chunk).is_ok() {}
        }
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.inside("filler")).expect("remove the filler");
    }

    /// Remounts the tmpfs read-only (`ro`) or read-write (`rw`) inside the namespace.
    fn remount(&self, mode: &str) {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "--", "mount", "-o"])
            .arg(format!("remount,{mode}"))
            .arg(&self.mount)
            .output()
            .expect("nsenter runs");
        assert!(out.status.success(), "remount {mode}: {out:?}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Server {
    process: ServerProcess,
    remote: Remote,
}

impl Server {
    async fn ready(&self) -> (u16, Value) {
        let r = self
            .remote
            .client
            .get(format!("{}/health/ready", self.remote.address))
            .send()
            .await
            .expect("ready sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn pay(&self, id: u32, cents: i64) -> (u16, Value) {
        self.remote
            .post(
                "/paymentposting",
                &payment(
                    &id.to_string(),
                    "ACC-100200",
                    &Decimal::new(cents, 2).to_string(),
                    "processed",
                ),
            )
            .await
    }

    async fn event(&self, event_id: i64, cents: i64) -> (u16, Value) {
        self.remote
            .send_event(&captured_event(
                event_id,
                &format!("trouble-{event_id}"),
                Some("ACC-100201"),
                cents,
            ))
            .await
    }

    /// Polls readiness (the probe is cheap) until it answers `want`, at most ~5 s.
    async fn ready_becomes(&self, want: u16) -> (u16, Value) {
        let mut last = (0, Value::Null);
        for _ in 0..100 {
            last = self.ready().await;
            if last.0 == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }
}

fn assert_orbipay_unavailable(answer: &(u16, Value), what: &str) {
    assert_eq!(answer.0, 503, "{what}: {}", answer.1);
    assert_eq!(first_error(&answer.1).0, "error_processing", "{what}: {}", answer.1);
}

fn assert_empayre_unavailable(answer: &(u16, Value), what: &str) {
    assert_eq!(answer.0, 503, "{what}: {}", answer.1);
    assert!(
        answer.1["message"].is_string() && answer.1.as_object().is_some_and(|o| o.len() == 1),
        "{what}: {}",
        answer.1
    );
}

/// Which of the test's writes the store holds: Orbipay payment ids and Empayre event ids that
/// were acknowledged, and those answered 503 (which may or may not have landed, but never half).
#[derive(Default)]
struct Writes {
    acked_payments: BTreeMap<u32, i64>,
    acked_events: BTreeMap<i64, i64>,
    refused_payments: BTreeMap<u32, i64>,
    refused_events: BTreeMap<i64, i64>,
}

/// After a restart: every acknowledged write is there, every refused one wholly there or wholly
/// absent, and balances and journal agree with exactly that.
async fn assert_whole(server: &Server, writes: &Writes) {
    let opening = demo_opening_balances();
    let mut expected = opening.clone();
    let mut landed = Vec::new();
    for (id, cents) in writes.acked_payments.iter().chain(&writes.refused_payments) {
        let record = server.remote.record("payment", &id.to_string()).await;
        if writes.acked_payments.contains_key(id) {
            assert!(record.is_some(), "acknowledged payment {id} is gone");
        }
        if let Some(r) = record {
            assert_eq!(r["amount"], Decimal::new(*cents, 2).to_string(), "{r}");
            *expected.get_mut("ACC-100200").expect("account") -= Decimal::new(*cents, 2);
            landed.push(("payment", id.to_string()));
        }
    }
    for (event_id, cents) in writes.acked_events.iter().chain(&writes.refused_events) {
        let key = format!("demo:trouble-{event_id}:1");
        let record = server.remote.record("empayre-payment", &key).await;
        if writes.acked_events.contains_key(event_id) {
            assert!(record.is_some(), "acknowledged event {event_id} is gone");
        }
        if let Some(r) = record {
            assert_eq!(r["amount"], Decimal::new(*cents, 2).to_string(), "{r}");
            *expected.get_mut("ACC-100201").expect("account") -= Decimal::new(*cents, 2);
            landed.push(("empayre-payment", key));
        }
    }
    let balances = server.remote.demo_balances().await;
    assert_eq!(balances, expected, "balances = opening − Σ the writes the store holds");
    let journal = server.remote.journal().await;
    assert_journal_consistent(&journal, &opening, &balances);
    let mut in_journal: Vec<(&str, String)> = journal
        .iter()
        .map(|e| {
            let kind = if e["kind"] == "payment" {
                "payment"
            } else {
                "empayre-payment"
            };
            (kind, e["record_id"].as_str().expect("record_id").to_string())
        })
        .collect();
    in_journal.sort();
    landed.sort();
    assert_eq!(
        in_journal, landed,
        "one journal entry per stored write, none for the rest"
    );
}

/// Posts until the store refuses (the first writes after the disk filled may still fit in what
/// sled had already written); the refusal must be a 503 and nothing else.
async fn post_until_refused(server: &Server, writes: &mut Writes, first_id: u32) {
    for id in first_id..first_id + 300 {
        let answer = server.pay(id, 100).await;
        if answer.0 == 200 {
            writes.acked_payments.insert(id, 100);
            continue;
        }
        assert_orbipay_unavailable(&answer, "a posting the store cannot write");
        writes.refused_payments.insert(id, 100);
        return;
    }
    panic!("the store never refused a posting");
}

/// While the store cannot write: Orbipay 503 `error_processing`, Empayre 503 `{"message"}`,
/// readiness 503 naming `store_write`.
async fn assert_refuses_everything(server: &Server, writes: &mut Writes, id: u32, event_id: i64) {
    let answer = server.pay(id, 200).await;
    assert_orbipay_unavailable(&answer, "a posting");
    writes.refused_payments.insert(id, 200);
    let answer = server.event(event_id, 300).await;
    assert_empayre_unavailable(&answer, "an event");
    writes.refused_events.insert(event_id, 300);
    let (status, body) = server.ready_becomes(503).await;
    assert_eq!(status, 503, "ready while the store cannot write: {body}");
    assert_eq!(body["failed_check"], "store_write", "{body}");
}

async fn assert_serves(server: &Server, writes: &mut Writes, id: u32, event_id: i64) {
    let (status, body) = server.ready_becomes(200).await;
    assert_eq!(status, 200, "ready: {body}");
    let answer = server.pay(id, 400).await;
    assert_eq!(answer.0, 200, "a posting: {}", answer.1);
    writes.acked_payments.insert(id, 400);
    assert_eq!(server.event(event_id, 500).await, (200, json!({"status": "stored"})));
    writes.acked_events.insert(event_id, 500);
}

/// The platforms re-send what got a 503: each lands exactly once.
async fn resend_refused(server: &Server, writes: &mut Writes) {
    for (id, cents) in std::mem::take(&mut writes.refused_payments) {
        let answer = server.pay(id, cents).await;
        let duplicate = answer.0 == 422 && first_error(&answer.1).0 == "error_duplicate_posting";
        assert!(answer.0 == 200 || duplicate, "re-sent payment {id}: {answer:?}");
        writes.acked_payments.insert(id, cents);
    }
    for (event_id, cents) in std::mem::take(&mut writes.refused_events) {
        let answer = server.event(event_id, cents).await;
        assert!(
            answer == (200, json!({"status": "stored"})) || answer == (200, json!({"status": "duplicate"})),
            "re-sent event {event_id}: {answer:?}"
        );
        writes.acked_events.insert(event_id, cents);
    }
}

#[tokio::test]
async fn a_full_store_answers_503_and_serves_whole_again_once_space_returns() {
    let ns = Namespace::new("4m");
    let mut writes = Writes::default();
    let mut server = ns.serve().await;
    assert_serves(&server, &mut writes, 5001, 50_001).await;

    ns.fill();
    post_until_refused(&server, &mut writes, 6000).await;
    assert_refuses_everything(&server, &mut writes, 6500, 60_001).await;

    ns.free();
    // A crash or a restart while the disk was full: nothing is half-applied after it.
    server.process.kill().await;
    server = ns.serve().await;
    assert_whole(&server, &writes).await;
    assert_serves(&server, &mut writes, 7001, 70_001).await;
    resend_refused(&server, &mut writes).await;
    assert_whole(&server, &writes).await;
    server.process.kill().await;
    assert!(
        ns.log_text().contains("No space left on device"),
        "the log names the cause"
    );
}

/// Linux refuses to remount a filesystem read-only while a process holds a file on it open for
/// writing (`mount: ... mount point is busy`), and sled holds its log open for the life of the
/// server, so a read-only store is met at start-up: after a stop, the tmpfs is remounted
/// read-only. The server must refuse to run on it (exit status 1, naming the store) rather than
/// accept postings it cannot keep; once the store is writable again it serves everything it had.
#[tokio::test]
async fn a_read_only_store_stops_start_up_and_serves_whole_again_once_writable() {
    let ns = Namespace::new("16m");
    let mut writes = Writes::default();
    let mut server = ns.serve().await;
    assert_serves(&server, &mut writes, 5001, 50_001).await;
    server.process.kill().await;
    ns.remount("ro");
    let (status, stdout, stderr) = ns.serve_to_exit().await;
    assert_eq!(status, Some(1), "start-up on a read-only store: {stdout} {stderr}");
    assert!(
        stderr.contains("Read-only file system") && stderr.contains(&*ns.mount.to_string_lossy()),
        "the refusal names the store and the cause: {stderr}"
    );
    assert!(!stdout.contains("listening"), "{stdout}");
    ns.remount("rw");
    server = ns.serve().await;
    assert_whole(&server, &writes).await;
    assert_serves(&server, &mut writes, 7001, 70_001).await;
    assert_whole(&server, &writes).await;
    server.process.kill().await;
}

/// The contract (issue 7): once the disk has room again, the service recovers WITHOUT a restart.
/// sled 0.34.7 stores the first I/O error of its log writer as a "global error"
/// (`Config::set_global_error`, pagecache/iobuf.rs) that every later write and flush returns,
/// and only opening the `Db` again resets it (`PageCache::start`): the store reopens itself.
#[tokio::test]
async fn a_full_store_recovers_without_a_restart() {
    let ns = Namespace::new("4m");
    let mut writes = Writes::default();
    let server = ns.serve().await;
    assert_serves(&server, &mut writes, 5001, 50_001).await;
    ns.fill();
    post_until_refused(&server, &mut writes, 6000).await;
    assert_refuses_everything(&server, &mut writes, 6500, 60_001).await;
    ns.free();
    assert_serves(&server, &mut writes, 7001, 70_001).await;
    resend_refused(&server, &mut writes).await;
    assert_whole(&server, &writes).await;
}

/// The journal is a change feed (`GET /admin/journal`): an entry a poller has read must never
/// change or vanish. An entry committed to sled's memory whose flush then fails (here, a full
/// disk) is answered 503 and, after a reopen or restart, its seq goes to another posting: the
/// feed must serve only entries the flusher has made durable.
#[tokio::test]
async fn the_journal_feed_only_shows_durable_entries() {
    let ns = Namespace::new("4m");
    let mut writes = Writes::default();
    let mut server = ns.serve().await;
    assert_serves(&server, &mut writes, 5001, 50_001).await;
    ns.fill();
    post_until_refused(&server, &mut writes, 6000).await;
    let polled = server.remote.journal().await;
    ns.free();
    server.process.kill().await;
    server = ns.serve().await;
    assert_serves(&server, &mut writes, 7001, 70_001).await;
    let now = server.remote.journal().await;
    for (seen, current) in polled.iter().zip(&now) {
        assert_eq!(
            (&seen["seq"], &seen["record_id"]),
            (&current["seq"], &current["record_id"]),
            "an entry the feed served before the restart changed after it"
        );
    }
    server.process.kill().await;
}
