//! A 2xx means the write is on disk: the real binary runs under `strace -f`, and the trace must
//! show, for every acknowledged write, a full sync (`fsync` or `fdatasync`) of the store's log
//! file that began after the request's last bytes were read and ended before its 2xx was
//! written to the socket. For an Empayre event large enough that sled stores it in a file of its
//! own under `blobs/`, that file and the `blobs/` directory must be synced in the same window.
//!
//! `sync_file_range`, which sled's own flush ends with on Linux, does not count: it neither
//! flushes the disk's write cache nor commits a change of the file's size. A SIGKILL test cannot
//! tell the two apart (the page cache survives a killed process); the order of syscalls can.
//!
//! Requests go one at a time, each with its own `x-request-id`, which the server echoes on the
//! response: that is how a read and a write in the trace are tied to a request.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// The syscalls the trace keeps: the socket reads and writes that carry requests and answers,
/// the full syncs, and `sync_file_range` so a failure can say what happened instead.
const TRACED: &str = "trace=read,recvfrom,readv,write,writev,sendto,sendmsg,fsync,fdatasync,sync_file_range";

/// One syscall of the trace, its entry and exit line numbers (equal unless strace split it).
#[derive(Debug)]
struct Call {
    name: String,
    /// The fd as `strace -yy` decodes it: a path, or `TCP:[local->peer]`.
    fd: String,
    text: String,
    result: i64,
    entry: usize,
    exit: usize,
}

/// Reads an `strace -f -yy` trace: `TID name(fd<what>, ...) = result`, where a call another
/// thread interrupted is split into `... <unfinished ...>` and `<... name resumed>...`.
fn parse_trace(text: &str) -> Vec<Call> {
    let call = regex::Regex::new(r"^(\w+)\((\d+)<(.*?)>[,)]").expect("regex");
    let mut pending: HashMap<&str, (usize, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let Some((tid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let (entry, whole) = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(tid, (line_no, head.to_string()));
            continue;
        } else if rest.starts_with("<... ") {
            let Some((entry, head)) = pending.remove(tid) else {
                continue;
            };
            let tail = rest.split_once(" resumed>").map_or("", |(_, t)| t);
            (entry, format!("{head}{tail}"))
        } else {
            (line_no, rest.to_string())
        };
        let Some(parts) = call.captures(&whole) else { continue };
        let result = whole
            .rsplit_once(" = ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        calls.push(Call {
            name: parts[1].to_string(),
            fd: parts[3].to_string(),
            text: whole,
            result,
            entry,
            exit: line_no,
        });
    }
    calls
}

/// A file a request's answer must wait for: a name for messages, and which fds it matches.
type Required<'a> = (&'a str, &'a dyn Fn(&str) -> bool);

/// What the trace shows for one request: `Ok` when, for each of `required`, a full sync of a
/// matching file lies between the request's last read and its 2xx; else what was seen instead.
fn check_request(calls: &[Call], request_id: &str, required: &[Required<'_>]) -> Result<(), String> {
    let is_socket = |c: &Call| c.fd.contains("TCP");
    let marker = format!("x-request-id: {request_id}\\r\\n");
    let read = calls
        .iter()
        .find(|c| matches!(c.name.as_str(), "read" | "recvfrom" | "readv") && is_socket(c) && c.text.contains(&marker))
        .ok_or("its request was not read on a socket in the trace")?;
    let answer = calls
        .iter()
        .find(|c| {
            matches!(c.name.as_str(), "write" | "writev" | "sendto" | "sendmsg")
                && c.fd == read.fd
                && c.text.contains(&marker)
                && c.entry > read.exit
        })
        .ok_or("no answer to it was written on its connection")?;
    if !answer.text.contains("HTTP/1.1 2") {
        return Err(format!("its answer was not a 2xx: {}", answer.text));
    }
    // The request is complete at the last read on its connection before the answer (the body
    // may come in a read of its own).
    let arrived = calls
        .iter()
        .filter(|c| {
            matches!(c.name.as_str(), "read" | "recvfrom" | "readv")
                && c.fd == read.fd
                && c.result > 0
                && c.exit < answer.entry
        })
        .map(|c| c.exit)
        .max()
        .unwrap_or(read.exit);
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, matches)| {
            !calls.iter().any(|c| {
                matches!(c.name.as_str(), "fsync" | "fdatasync")
                    && matches(&c.fd)
                    && c.result == 0
                    && c.entry > arrived
                    && c.exit < answer.entry
            })
        })
        .map(|(what, _)| *what)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let between: Vec<String> = calls
        .iter()
        .filter(|c| c.entry > arrived && c.exit < answer.entry && !is_socket(c))
        .map(|c| format!("{}({})", c.name, c.fd))
        .collect();
    Err(format!(
        "answered with no fsync/fdatasync of {missing:?} in between; between the request and its answer: {between:?}"
    ))
}

/// A server under strace; the server itself is killed on drop, so a failing test leaves no
/// server running (killing strace alone would detach it and leave it running).
struct Traced {
    server: ServerProcess,
    server_pid: Option<i32>,
}

impl Traced {
    /// Kills the traced server and waits for strace to write the rest of the trace and exit.
    async fn stop(&mut self) {
        if let Some(pid) = self.server_pid.take() {
            // SAFETY: kill(2) with a pid this test started; it touches no memory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let exited = tokio::time::timeout(Duration::from_secs(30), self.server.child.wait()).await;
        assert!(exited.is_ok(), "strace did not exit after the server was killed");
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Some(pid) = self.server_pid.take() {
            // SAFETY: as in `stop`.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The one child process of `parent` (the server strace started), from /proc.
fn child_of(parent: u32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // `pid (comm) state ppid ...`; comm may hold spaces, so read after its last ')'.
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

fn assert_strace_installed() {
    let found = std::process::Command::new("strace").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "strace is not installed: `bash scripts/test.sh` installs it (Debian package strace)"
    );
}

async fn start_traced(dir: &Path, store: &Path) -> Traced {
    let config = dir.join("traced.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\nworkers = 2\n[store]\npath = \"{}\"\ncache_capacity_bytes = 16777216\n[log]\nlevel = \"warn\"\n",
            store.display()
        ),
    )
    .expect("config");
    let mut command = tokio::process::Command::new("strace");
    command
        .args(["-f", "-qq", "-yy", "-s", "4096", "--seccomp-bpf", "-e", TRACED, "-o"])
        .arg(dir.join("trace"))
        .arg("--")
        .arg(binary())
        .args(["serve", "--config"])
        .arg(&config);
    let server = start_command(command, &dir.join("server.log")).await;
    let strace_pid = server.child.id().expect("strace runs");
    let server_pid = child_of(strace_pid);
    assert!(server_pid.is_some(), "the server strace started was not found");
    Traced { server, server_pid }
}

/// One acknowledged write: how to send it, and the id that names it in the trace.
struct Request {
    id: String,
    what: String,
    send: reqwest::RequestBuilder,
}

#[tokio::test]
async fn every_acknowledgement_follows_a_full_sync_of_the_store() {
    assert_strace_installed();
    let dir = tempfile::tempdir().expect("dir");
    let dir_path = dir.path().canonicalize().expect("canonical temp dir");
    let store = dir_path.join("store");
    let mut traced = start_traced(&dir_path, &store).await;
    let remote = Remote::new(&traced.server.address, DEMO_ADMIN_TOKEN);
    let signer = fixture_signer();
    let address = &remote.address;
    let client = &remote.client;

    let orbipay = |path: &str, body: &Value| {
        client
            .post(format!("{address}{path}"))
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .json(body)
    };
    let event = |event: &Value| {
        let body = serde_json::to_vec(event).expect("json");
        let signature = signer.sign_header(&body).expect("sign");
        client
            .post(format!("{address}/empayre/webhook"))
            .header("content-type", "application/json")
            .header("Content-Signature", signature)
            .body(body)
    };
    let admin = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{address}{path}"))
            .bearer_auth(DEMO_ADMIN_TOKEN)
    };

    let accounts = ["ACC-100200", "ACC-100201", "ACC-100800"];
    let mut requests = Vec::new();
    for i in 0..8 {
        let account = accounts[i % accounts.len()];
        let payment_id = format!("{}", 8_100_000 + i);
        requests.push(Request {
            id: format!("durability-payment-{i:02}"),
            what: format!("payment {payment_id}"),
            send: orbipay("/paymentposting", &payment(&payment_id, account, "1.25", "processed")),
        });
        requests.push(Request {
            id: format!("durability-event-{i:02}"),
            what: format!("Empayre event {}", 810_000 + i),
            send: event(&captured_event(
                810_000 + i as i64,
                &format!("durability-{i}"),
                Some(account),
                150,
            )),
        });
    }
    requests.push(Request {
        id: "durability-reversal".into(),
        what: "reversal of payment 8100000".into(),
        send: orbipay(
            "/paymentreversalposting",
            &payment("8100000", "ACC-100200", "1.25", "returned"),
        ),
    });
    requests.push(Request {
        id: "durability-unmatched".into(),
        what: "an Empayre event for no account".into(),
        send: event(&captured_event(819_999, "durability-unmatched", None, 300)),
    });
    requests.push(Request {
        id: "durability-assign".into(),
        what: "assignment of the unmatched payment".into(),
        send: admin(
            reqwest::Method::POST,
            "/admin/empayre/unmatched/demo:durability-unmatched:1/assign",
        )
        .json(&json!({"account_number": "ACC-100201"})),
    });
    // sled writes an item over ~128 KiB to a file of its own under `blobs/`, and never syncs it.
    let mut large = captured_event(819_998, "durability-large", Some("ACC-100800"), 175);
    large["invoice"]["metadata"]["note"] = json!("n".repeat(160 * 1024));
    requests.push(Request {
        id: "durability-large-event".into(),
        what: "an Empayre event of 160 KiB".into(),
        send: event(&large),
    });
    requests.push(Request {
        id: "durability-import".into(),
        what: "PUT /admin/accounts".into(),
        send: admin(reqwest::Method::PUT, "/admin/accounts").json(&json!([{
            "account_number": "ACC-810001", "status": "active", "currency": "USD", "current_balance": "40.00",
            "customers": [{"customer_reference": "C-81001", "first_name": "Ida"}]
        }])),
    });

    let mut sent = Vec::new();
    for request in requests {
        let response = request
            .send
            .header("x-request-id", &request.id)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert!((200..300).contains(&status), "{}: {status} {body}", request.what);
        sent.push((request.id, request.what));
    }
    traced.stop().await;

    let trace = std::fs::read_to_string(dir_path.join("trace")).expect("trace written");
    let calls = parse_trace(&trace);
    let log_file = store.join("db").display().to_string();
    let blobs = store.join("blobs").display().to_string();
    let blob_prefix = format!("{blobs}/");
    let is_log = |fd: &str| fd == log_file;
    let is_blob = |fd: &str| fd.starts_with(&blob_prefix);
    let is_blob_dir = |fd: &str| fd == blobs;
    let failures: Vec<String> = sent
        .iter()
        .filter_map(|(id, what)| {
            let mut required: Vec<Required<'_>> = vec![("the log file db", &is_log)];
            if id == "durability-large-event" {
                required.push(("a new file in blobs/", &is_blob));
                required.push(("the blobs/ directory", &is_blob_dir));
            }
            check_request(&calls, id, &required)
                .err()
                .map(|why| format!("{what} ({id}): {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} acknowledgements were not preceded by a full sync:\n{}",
        failures.len(),
        sent.len(),
        failures.join("\n")
    );
}

/// The parser on a hand-written trace: a sync split by another thread counts from its entry to
/// its exit, and one that straddles the request's arrival does not count.
#[test]
fn the_trace_parser_ties_syncs_to_requests() {
    let db = "/s/db";
    let conn = "TCP:[127.0.0.1:8080->127.0.0.1:5000]";
    let trace = [
        format!("10 fdatasync(9<{db}> <unfinished ...>"),
        format!(r#"11 recvfrom(20<{conn}>, "POST / HTTP/1.1\r\nx-request-id: a\r\n\r\n", 8192, 0, NULL, NULL) = 40"#),
        "10 <... fdatasync resumed>) = 0".to_string(),
        format!(
            r#"11 sendto(20<{conn}>, "HTTP/1.1 200 OK\r\nx-request-id: a\r\n\r\n", 40, MSG_NOSIGNAL, NULL, 0) = 40"#
        ),
        format!(r#"11 recvfrom(20<{conn}>, "POST / HTTP/1.1\r\nx-request-id: b\r\n\r\n", 8192, 0, NULL, NULL) = 40"#),
        format!("10 sync_file_range(9<{db}>, 0, 10, SYNC_FILE_RANGE_WRITE) = 0"),
        format!("10 fdatasync(9<{db}> <unfinished ...>"),
        r#"12 write(2<pipe:[1]>, "log", 3) = 3"#.to_string(),
        "10 <... fdatasync resumed>) = 0".to_string(),
        format!(
            r#"11 sendto(20<{conn}>, "HTTP/1.1 200 OK\r\nx-request-id: b\r\n\r\n", 40, MSG_NOSIGNAL, NULL, 0) = 40"#
        ),
    ]
    .join("\n");
    let calls = parse_trace(&trace);
    let is_db = |fd: &str| fd == db;
    let required: [Required<'_>; 1] = [("db", &is_db)];
    let a = check_request(&calls, "a", &required);
    assert!(a.is_err(), "a's only sync began before it arrived: {a:?}");
    assert_eq!(check_request(&calls, "b", &required), Ok(()));
    assert!(check_request(&calls, "c", &required).is_err(), "an unknown request");
    let is_blob = |fd: &str| fd.starts_with("/s/blobs/");
    let b = check_request(&calls, "b", &[("db", &is_db), ("a blob", &is_blob)]);
    assert!(b.is_err(), "b synced no blob: {b:?}");
}
