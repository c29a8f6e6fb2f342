//! The load generator: a minimal HTTP/1.1 client over `tokio::net::TcpStream` and a closed-loop
//! driver that keeps C keep-alive connections busy, one request in flight on each.
//!
//! Deliberately tiny (no reqwest/hyper): the server has two cores to share with us, so the client
//! writes pre-built request bytes, reads the response head, honours `Content-Length` (and
//! `chunked`, for robustness) and hands the body to the scenario's check.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take before it counts as an error (and the connection is dropped).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Response heads larger than this are refused as malformed.
const MAX_HEAD: usize = 64 * 1024;
/// Distinct error messages kept per scenario (the rest are counted under one line).
const MAX_DISTINCT_ERRORS: usize = 20;

/// One parsed response; `body` is the decoded body.
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    body: Vec<u8>,
    /// The server said `Connection: close`: reconnect before the next request.
    closed: bool,
}

impl Conn {
    pub async fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("set TCP_NODELAY: {e}"))?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            body: Vec::with_capacity(16 * 1024),
            closed: false,
        })
    }

    /// Sends `request` (complete bytes) and reads one response.
    pub async fn send(&mut self, request: &[u8]) -> Result<Response<'_>, String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.buf.clear();
        self.body.clear();
        // Read until the end of the head.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err("response head over 64 KiB".into());
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| "response head is not UTF-8".to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "HTTP/1.1" && version != "HTTP/1.0" {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("bad header line {line:?}"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse().map_err(|_| format!("bad Content-Length {value:?}"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                self.closed = value.eq_ignore_ascii_case("close");
            }
        }
        if version == "HTTP/1.0" {
            self.closed = true;
        }
        if chunked {
            self.read_chunked(head_end).await?;
        } else {
            let len = content_length.ok_or("response has neither Content-Length nor chunked encoding")?;
            while self.buf.len() < head_end + len {
                self.fill().await?;
            }
            if self.buf.len() > head_end + len {
                return Err("bytes after the response body (the client never pipelines)".into());
            }
            self.body.extend_from_slice(&self.buf[head_end..]);
        }
        Ok(Response {
            status,
            body: &self.body,
        })
    }

    async fn fill(&mut self) -> Result<(), String> {
        let start = self.buf.len();
        self.buf.resize(start + 16 * 1024, 0);
        let n = self.stream.read(&mut self.buf[start..]).await;
        match n {
            Ok(0) => {
                self.buf.truncate(start);
                Err("connection closed by the server mid-response".into())
            }
            Ok(n) => {
                self.buf.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(format!("read: {e}"))
            }
        }
    }

    async fn read_chunked(&mut self, mut pos: usize) -> Result<(), String> {
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf[pos..], b"\r\n") {
                    break pos + i;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.buf[pos..line_end]).map_err(|_| "bad chunk size".to_string())?;
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
            pos = line_end + 2;
            while self.buf.len() < pos + size + 2 {
                self.fill().await?;
            }
            if size == 0 {
                // No trailers are expected from actix; the final CRLF ends the message.
                return Ok(());
            }
            self.body.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size + 2;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a scenario sends and how it judges the answer. `prepare` writes the next request into
/// `out` and returns what the answer must show; `None` means the scenario has nothing more to send
/// (a pre-signed pool ran out).
pub trait Scenario: Send + Sync + 'static {
    type Expect: Send;
    fn prepare(&self, rng: &mut Rng, out: &mut Vec<u8>) -> Option<Self::Expect>;
    fn check(&self, expect: &Self::Expect, status: u16, body: &[u8]) -> Result<(), String>;
}

/// xorshift64*: per connection, cheap, good enough to pick random accounts.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % n.max(1)
    }
}

/// When a run stops.
#[derive(Clone, Copy)]
pub enum Budget {
    /// Start no request after this long.
    Time(Duration),
    /// Send exactly this many requests (errors included) in total.
    Count(u64),
}

/// The result of one driven scenario.
pub struct RunResult {
    pub ok: u64,
    pub errors: u64,
    /// From the first request until the last connection finished.
    pub elapsed: Duration,
    /// Latency of the successful requests, microseconds.
    pub hist: Histogram<u64>,
    pub error_samples: BTreeMap<String, u64>,
    /// The scenario ran out of requests before its budget did.
    pub exhausted: bool,
}

impl RunResult {
    pub fn requests(&self) -> u64 {
        self.ok + self.errors
    }

    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct ConnResult {
    ok: u64,
    errors: u64,
    hist: Histogram<u64>,
    error_samples: BTreeMap<String, u64>,
    exhausted: bool,
}

fn note(samples: &mut BTreeMap<String, u64>, message: String) {
    if let Some(n) = samples.get_mut(&message) {
        *n += 1;
    } else if samples.len() < MAX_DISTINCT_ERRORS {
        samples.insert(message, 1);
    } else {
        *samples.entry("(other errors)".into()).or_default() += 1;
    }
}

pub fn new_histogram() -> Result<Histogram<u64>, String> {
    // 1 µs .. 5 min, 3 significant digits.
    Histogram::new_with_bounds(1, 300_000_000, 3).map_err(|e| format!("histogram: {e}"))
}

/// Drives `scenario` over `connections` keep-alive connections until `budget` is spent.
/// `progress` (optional) counts successful requests as they complete.
pub async fn drive<S: Scenario>(
    addr: &str,
    connections: usize,
    budget: Budget,
    scenario: Arc<S>,
    progress: Option<Arc<AtomicU64>>,
) -> Result<RunResult, String> {
    // `addr` may list several servers (replicas), comma-separated: connection i goes to the
    // (i mod n)-th, as a round-robin load balancer would spread them.
    let addrs: Vec<&str> = addr.split(',').collect();
    // Connect everything first, so connection set-up is not part of the measurement.
    let mut conns = Vec::with_capacity(connections);
    for i in 0..connections {
        conns.push(Conn::connect(addrs[i % addrs.len()]).await?);
    }
    let remaining = Arc::new(AtomicU64::new(match budget {
        Budget::Count(n) => n,
        Budget::Time(_) => u64::MAX,
    }));
    let exhausted_flag = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = match budget {
        Budget::Time(d) => Some(started + d),
        Budget::Count(_) => None,
    };
    let mut tasks = Vec::with_capacity(connections);
    for (i, conn) in conns.into_iter().enumerate() {
        let scenario = scenario.clone();
        let remaining = remaining.clone();
        let exhausted_flag = exhausted_flag.clone();
        let progress = progress.clone();
        let addr = addrs[i % addrs.len()].to_string();
        let seed = (i as u64 + 1) ^ started.elapsed().as_nanos() as u64 ^ 0x5DEE_CE66_D1CE_F00D;
        tasks.push(tokio::spawn(async move {
            run_conn(
                conn,
                &addr,
                deadline,
                &remaining,
                &exhausted_flag,
                scenario.as_ref(),
                Rng::new(seed),
                progress.as_deref(),
            )
            .await
        }));
    }
    let mut total = RunResult {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        hist: new_histogram()?,
        error_samples: BTreeMap::new(),
        exhausted: false,
    };
    for task in tasks {
        let r = task.await.map_err(|e| format!("load task failed: {e}"))??;
        total.ok += r.ok;
        total.errors += r.errors;
        total.hist.add(&r.hist).map_err(|e| format!("histogram merge: {e}"))?;
        for (m, n) in r.error_samples {
            *total.error_samples.entry(m).or_default() += n;
        }
        total.exhausted |= r.exhausted;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

#[allow(clippy::too_many_arguments)]
async fn run_conn<S: Scenario>(
    mut conn: Conn,
    addr: &str,
    deadline: Option<Instant>,
    remaining: &AtomicU64,
    exhausted_flag: &AtomicBool,
    scenario: &S,
    mut rng: Rng,
    progress: Option<&AtomicU64>,
) -> Result<ConnResult, String> {
    let mut r = ConnResult {
        ok: 0,
        errors: 0,
        hist: new_histogram()?,
        error_samples: BTreeMap::new(),
        exhausted: false,
    };
    let mut request = Vec::with_capacity(4096);
    let mut broken = false;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || exhausted_flag.load(Ordering::Relaxed) {
            break;
        }
        // Claim one request of a count budget.
        if remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            break;
        }
        request.clear();
        let Some(expect) = scenario.prepare(&mut rng, &mut request) else {
            exhausted_flag.store(true, Ordering::Relaxed);
            r.exhausted = true;
            break;
        };
        if broken || conn.closed {
            match Conn::connect(addr).await {
                Ok(c) => {
                    conn = c;
                    broken = false;
                }
                Err(e) => {
                    r.errors += 1;
                    note(&mut r.error_samples, e);
                    // Do not spin on a dead server.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let sent = Instant::now();
        // Err((message, connection unusable)): an I/O, timeout or framing error leaves the
        // connection in an unknown state; a wrong answer does not.
        let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, conn.send(&request)).await {
            Err(_) => Err((format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()), true)),
            Ok(Err(e)) => Err((e, true)),
            Ok(Ok(resp)) => {
                let micros = sent.elapsed().as_micros().max(1) as u64;
                match scenario.check(&expect, resp.status, resp.body) {
                    Ok(()) => Ok(micros),
                    Err(e) => Err((format!("HTTP {}: {e}", resp.status), false)),
                }
            }
        };
        match outcome {
            Ok(micros) => {
                r.ok += 1;
                r.hist.saturating_record(micros);
                if let Some(p) = progress {
                    p.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err((e, unusable)) => {
                r.errors += 1;
                broken |= unusable;
                note(&mut r.error_samples, e);
            }
        }
    }
    Ok(r)
}

/// One request on a fresh connection, for set-up and probing (metrics, route checks).
pub async fn one_shot(addr: &str, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut conn = Conn::connect(addr).await?;
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, conn.send(request))
        .await
        .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))??;
    Ok((resp.status, resp.body.to_vec()))
}
