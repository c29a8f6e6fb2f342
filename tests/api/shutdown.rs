//! The real binary stopped by a signal mid-stream: readiness says 503 at once, the listener keeps
//! serving for `drain_secs`, no request that reached it is reset or refused with a 5xx, every
//! 2xx is in the store after a restart, and the process exits 0 within `shutdown_timeout_secs`.
//! A second signal exits at once; a stuck client does not hold the stop past the timeout.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

const DRAIN_SECS: u64 = 2;
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// A config for the binary (layered over `config/default.toml`: demo client, demo Empayre source,
/// demo admin token) with a short drain.
fn config(dir: &Path, drain_secs: u64, shutdown_timeout_secs: u64) -> std::path::PathBuf {
    let path = dir.join("shutdown.toml");
    let text = format!(
        "[server]\nport = 0\nworkers = 2\ndrain_secs = {drain_secs}\nshutdown_timeout_secs = {shutdown_timeout_secs}\n\
         [store]\npath = \"{}\"\ncache_capacity_bytes = 16777216\n[log]\nlevel = \"debug\"\n",
        dir.join("store").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn send_signal(server: &ServerProcess, signal: i32) {
    let pid = server.child.id().expect("the server runs") as i32;
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Payment,
    Event,
}

/// How one request ended.
#[derive(Debug)]
enum Ended {
    Answered(u16, Value),
    /// No connection was made (refused, or no answer to the SYN): nothing was sent.
    NotConnected,
    /// Anything else: a connection reset or closed after the request was sent.
    Broken(String),
}

struct Sent {
    kind: Kind,
    key: String,
    at: Instant,
    ended: Ended,
}

/// One client sending its kind of request back to back until the server stops taking
/// connections (or `stop` is set).
async fn stream(worker: usize, kind: Kind, address: String, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Sent>>>) {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let signer = fixture_signer();
    for i in 0.. {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let (key, request) = match kind {
            Kind::Payment => {
                let id = format!("{}", 8_000_000 + worker * 100_000 + i);
                let account = ["ACC-100200", "ACC-100201", "ACC-100800"][i % 3];
                let body = serde_json::to_vec(&payment(&id, account, "1.00", "processed")).expect("json");
                let request = client
                    .post(format!("{address}/paymentposting"))
                    .header("client-key", CLIENT_KEY)
                    .header("api-key", API_KEY)
                    .header("content-type", "application/json")
                    .body(body);
                (id, request)
            }
            Kind::Event => {
                let event_id = 5_000_000 + worker * 100_000 + i;
                let event = captured_event(event_id as i64, &format!("sd-{worker}-{i}"), Some("ACC-100201"), 100);
                let body = serde_json::to_vec(&event).expect("json");
                let signature = signer.sign_header(&body).expect("sign");
                let request = client
                    .post(format!("{address}/empayre/webhook"))
                    .header("content-type", "application/json")
                    .header("Content-Signature", signature)
                    .body(body);
                (event_id.to_string(), request)
            }
        };
        let at = Instant::now();
        let ended = match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(bytes) => Ended::Answered(status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
                    Err(e) => Ended::Broken(format!("body: {e:?}")),
                }
            }
            Err(e) if e.is_connect() => Ended::NotConnected,
            Err(e) => Ended::Broken(format!("{e:?}")),
        };
        let last = matches!(ended, Ended::NotConnected);
        log.lock().expect("log").push(Sent { kind, key, at, ended });
        if last {
            return;
        }
    }
}

#[tokio::test]
async fn sigterm_mid_stream_drains_answers_everything_and_exits_0() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), DRAIN_SECS, SHUTDOWN_TIMEOUT_SECS);
    let server_log = dir.path().join("server.log");
    let mut server = start_binary(&config, &server_log).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let kinds = [Kind::Payment, Kind::Payment, Kind::Event, Kind::Event];
    let streams: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(worker, kind)| {
            tokio::spawn(stream(
                worker,
                *kind,
                server.address.clone(),
                stop.clone(),
                sent.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = Instant::now();
    send_signal(&server, libc::SIGTERM);
    // Readiness turns at once (the signal is handled on the server's event loop).
    let probe = reqwest::Client::new();
    let mut draining_after = None;
    while signalled.elapsed() < Duration::from_secs(1) {
        let r = probe
            .get(format!("{}/health/ready", server.address))
            .send()
            .await
            .expect("the listener still accepts while draining");
        let close = r.headers().get("connection").is_some_and(|v| v == "close");
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("json");
        if status == 503 {
            assert_eq!(body["failed_check"], "draining", "{body}");
            assert!(close, "answers while draining say Connection: close");
            draining_after = Some(signalled.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let draining_after = draining_after.expect("/health/ready answered 503 draining within a second of SIGTERM");

    let status = tokio::time::timeout(Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5), server.child.wait())
        .await
        .expect("the server exits")
        .expect("wait");
    let stopped_after = signalled.elapsed();
    stop.store(true, Ordering::Release);
    for s in streams {
        s.await.expect("stream");
    }
    let log = std::fs::read_to_string(&server_log).expect("server log");
    assert_eq!(status.code(), Some(0), "exit status; log:\n{log}");
    assert!(
        stopped_after <= Duration::from_secs(SHUTDOWN_TIMEOUT_SECS),
        "stopped after {stopped_after:?}, past shutdown_timeout_secs"
    );
    assert!(
        stopped_after >= Duration::from_secs(DRAIN_SECS),
        "the listener stays open for drain_secs ({stopped_after:?})"
    );

    let sent = std::mem::take(&mut *sent.lock().expect("log"));
    let mut acknowledged = Vec::new();
    let mut not_sent = Vec::new();
    let mut served_while_draining = 0;
    for s in &sent {
        match &s.ended {
            Ended::Answered(status, body) => {
                assert!(
                    *status < 500,
                    "a 5xx before the listener closed: {} {} {body}",
                    s.key,
                    status
                );
                assert_eq!(*status, 200, "{:?} {}: {body}", s.kind, s.key);
                if s.at > signalled + draining_after + Duration::from_millis(500) {
                    served_while_draining += 1;
                }
                acknowledged.push((s.kind, s.key.clone()));
            }
            Ended::NotConnected => not_sent.push((s.kind, s.key.clone())),
            Ended::Broken(e) => panic!(
                "{:?} {} sent {:?} after the signal was reset or cut: {e}",
                s.kind,
                s.key,
                s.at.saturating_duration_since(signalled)
            ),
        }
    }
    assert!(
        served_while_draining >= kinds.len(),
        "requests kept being served during the drain ({served_while_draining})"
    );
    assert!(
        acknowledged.len() > 20,
        "a steady stream: {} answered",
        acknowledged.len()
    );
    for line in [
        "signal received",
        "listener closed to new connections",
        "requests drained",
        "store closed",
    ] {
        assert!(log.contains(line), "the log says {line:?}:\n{log}");
    }

    // Restart on the same store: everything acknowledged is there; nothing that was never sent is.
    let mut server = start_binary(&config, &dir.path().join("server2.log")).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    for (kind, key) in &acknowledged {
        assert!(
            stored(&remote, *kind, key).await,
            "{kind:?} {key} was acknowledged but is not stored"
        );
    }
    for (kind, key) in &not_sent {
        assert!(
            !stored(&remote, *kind, key).await,
            "{kind:?} {key} was never sent but is stored"
        );
    }
    server.kill().await;
}

async fn stored(remote: &Remote, kind: Kind, key: &str) -> bool {
    match kind {
        Kind::Payment => remote.record("payment", key).await.is_some(),
        Kind::Event => {
            let (status, body) = remote.admin_get(&format!("/admin/empayre/events/demo/{key}")).await;
            assert!(status == 200 || status == 404, "event {key}: {status} {body}");
            status == 200
        }
    }
}

#[tokio::test]
async fn a_second_signal_exits_at_once_and_the_store_opens_again() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), 30, 60);
    let mut server = start_binary(&config, &dir.path().join("server.log")).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    let (status, body) = remote
        .post("/paymentposting", &payment("4242", "ACC-100200", "1.00", "processed"))
        .await;
    assert_eq!(status, 200, "{body}");
    send_signal(&server, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = Instant::now();
    send_signal(&server, libc::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("a second signal ends the drain of 30 s at once")
        .expect("wait");
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGINT),
        "exit status after a second SIGINT"
    );
    assert!(second.elapsed() < Duration::from_secs(5));
    let mut server = start_binary(&config, &dir.path().join("server2.log")).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    assert!(
        remote.record("payment", "4242").await.is_some(),
        "the acknowledged payment survived"
    );
    server.kill().await;
}

#[tokio::test]
async fn a_stuck_request_does_not_hold_the_stop_past_the_timeout() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), 1, 3);
    let mut server = start_binary(&config, &dir.path().join("server.log")).await;
    // A posting whose body never finishes arriving: in progress when the drain ends.
    let host = server.address.trim_start_matches("http://").to_string();
    let mut stuck = tokio::net::TcpStream::connect(&host).await.expect("connect");
    stuck
        .write_all(
            format!(
                "POST /paymentposting HTTP/1.1\r\nhost: {host}\r\nclient-key: {CLIENT_KEY}\r\napi-key: {API_KEY}\r\n\
                 content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"posting_info\":"
            )
            .as_bytes(),
        )
        .await
        .expect("head sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    send_signal(&server, libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("the server exits")
        .expect("wait");
    let stopped_after = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "a request that was never fully sent is not lost work"
    );
    assert!(
        stopped_after <= Duration::from_secs(3) + Duration::from_millis(500),
        "the stop took {stopped_after:?}, past shutdown_timeout_secs = 3"
    );
    drop(stuck);
}
