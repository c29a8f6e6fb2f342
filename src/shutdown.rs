//! Stopping without turning a sent payment into an error (SIGTERM or SIGINT): the parts the
//! server is built with (`Lifecycle`, `ListenerGate`). `serve::serve_until_signalled` runs the
//! sequence below with them.
//!
//! 1. `/health/ready` answers 503 `draining` at once, so a load balancer stops sending, and every
//!    answer from then on says `Connection: close`, so clients stop reusing connections.
//! 2. For `server.drain_secs` the listener keeps accepting and every request is served as usual.
//! 3. The listener is closed to new connections (`ListenerGate`), the connections it had already
//!    accepted are read until each has begun its request, then the server stops gracefully:
//!    requests in progress are answered (a posting's 2xx still waits for its fsync), idle
//!    connections close.
//! 4. The store closes: the flusher's last fsync, the minute counts stored, the files released.
//! 5. Exit status 0. The whole sequence is bounded by `server.shutdown_timeout_secs`; past it the
//!    process exits with status 1. A second signal exits at once (status 128 + the signal): the
//!    store is crash-safe, so nothing acknowledged is lost either way.
//!
//! HTTP/2 connections are not told to go away by actix-http's graceful stop (it has no GOAWAY
//! for it); they are closed when `shutdown_timeout_secs` runs out.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the server is draining. Read by `/health/ready` and by the middleware that marks
/// answers `Connection: close`.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
}

impl Lifecycle {
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// At least this long between closing the listener and stopping the server, and at most
/// `SETTLE_MAX`: actix's graceful stop closes a connection whose request it has not started yet,
/// so connections accepted just before the listener closed need a moment to have their request
/// read. The gate waits until every such connection has started one (`FreshConnections`); the
/// minimum covers TLS connections still in their handshake, which are not counted yet.
const SETTLE_MIN: Duration = Duration::from_millis(100);
const SETTLE_MAX: Duration = Duration::from_secs(1);

/// How long the accept queue may take to empty once no new connection can join it.
const ACCEPT_QUEUE_DRAIN: Duration = Duration::from_secs(1);

/// How long requests still in progress when the drain ends get before their connections are
/// dropped: what `shutdown_timeout_secs` leaves after the drain, less two seconds for closing
/// the listener (`ACCEPT_QUEUE_DRAIN`, the settle) and the store; at least one second.
pub fn in_progress_grace(server: &crate::settings::ServerSettings) -> Duration {
    Duration::from_secs(
        server
            .shutdown_timeout_secs
            .saturating_sub(server.drain_secs)
            .saturating_sub(2)
            .max(1),
    )
}

/// The listening socket, shared with actix (a duplicate descriptor of the same socket), so the
/// drain can stop new connections without resetting the ones already queued.
///
/// Closing a listening socket resets every connection waiting in its accept queue, even those
/// whose request was already sent. So the gate first makes the kernel drop every new packet for
/// the listener (a socket filter that accepts nothing: new clients see no answer to their SYN,
/// retry, and find the port closed once the process is gone), waits until actix has accepted
/// what was queued, and only then lets actix stop.
pub struct ListenerGate {
    socket: TcpListener,
    fresh: Arc<FreshConnections>,
}

impl ListenerGate {
    pub fn new(listener: &TcpListener) -> std::io::Result<Self> {
        Ok(Self {
            socket: listener.try_clone()?,
            fresh: Arc::default(),
        })
    }

    /// The count of accepted connections that have not begun a request, which the server's
    /// `on_connect` and request middleware keep (`FreshConnections::connected`, `Fresh::begin`).
    pub fn fresh_connections(&self) -> Arc<FreshConnections> {
        self.fresh.clone()
    }

    /// Stops new connections and waits (up to `ACCEPT_QUEUE_DRAIN`) until the connections
    /// already established have been accepted. Returns how many were still queued at the end.
    pub async fn close(&self) -> std::io::Result<u32> {
        let fd = self.socket.as_raw_fd();
        drop_every_packet(fd)?;
        let started = Instant::now();
        loop {
            let queued = accept_queue_len(fd)?;
            if queued == 0 || started.elapsed() >= ACCEPT_QUEUE_DRAIN {
                return Ok(queued);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every accepted connection has begun its request (at least `SETTLE_MIN`, at
    /// most `SETTLE_MAX`). Returns how many had not.
    pub async fn settle(&self) -> usize {
        let started = Instant::now();
        loop {
            let waiting = self.fresh.count.load(Ordering::Acquire);
            let elapsed = started.elapsed();
            if (waiting == 0 && elapsed >= SETTLE_MIN) || elapsed >= SETTLE_MAX {
                return waiting;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Accepted connections that have not begun a request yet.
#[derive(Debug, Default)]
pub struct FreshConnections {
    count: AtomicUsize,
}

impl FreshConnections {
    /// A connection was accepted: the mark goes into its extensions (`on_connect`), where the
    /// request middleware finds it (`HttpRequest::conn_data::<Fresh>`).
    pub fn connected(self: &Arc<Self>) -> Fresh {
        self.count.fetch_add(1, Ordering::AcqRel);
        Fresh {
            begun: AtomicBool::new(false),
            owner: self.clone(),
        }
    }
}

/// A connection counted in `FreshConnections` until its first request begins or it closes.
#[derive(Debug)]
pub struct Fresh {
    begun: AtomicBool,
    owner: Arc<FreshConnections>,
}

impl Fresh {
    /// A request of this connection has begun.
    pub fn begin(&self) {
        if !self.begun.swap(true, Ordering::AcqRel) {
            self.owner.count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        self.begin();
    }
}

/// Attaches a classic BPF program of one instruction, "return 0" (keep no byte of the packet),
/// to the socket: the kernel then drops every SYN and handshake ACK addressed to the listener.
fn drop_every_packet(fd: RawFd) -> std::io::Result<()> {
    let mut program = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fd` is an open socket owned by the gate; `fprog` points at `program`, which
    // outlives the call, and the kernel copies the program before returning.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// For a listening TCP socket, Linux reports the length of its accept queue in `tcpi_unacked`.
fn accept_queue_len(fd: RawFd) -> std::io::Result<u32> {
    // SAFETY: `tcp_info` is plain old data, so all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket; `info` and `len` are valid for writes of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(info.tcpi_unacked)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
