//! Throttled guessing: failed authentication is limited per client address.
//!
//! Every channel that checks a credential (EBPP credentials, the admin token, the console's
//! sign-in) asks `check` before it looks at the credential and reports a wrong one with
//! `failed`. Once an address has failed `server.auth_failures_per_minute` times within a minute
//! (counted from its first failure), its requests are answered 429 with `Retry-After` until that
//! minute is over, without any credential check. Other addresses are not affected: the table is
//! per address, and a request whose address has no failures costs one map lookup.
//!
//! The Empayre webhook has no secret to guess (anyone can hold a body, only Empayre can sign
//! it), so a correctly signed request is never refused: signature failures are counted the same
//! way, and only a request that fails its signature from an address past the limit gets 429.
//!
//! Addresses: IPv4 as is; IPv6 by its /64 prefix (one host usually holds a whole /64, so
//! counting single addresses would let it rotate through them). The peer address of the TCP
//! connection is used: behind a reverse proxy every client shares the proxy's address, so set a
//! higher limit there (or 0, off) and throttle at the proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window in which failures are counted.
pub const WINDOW: Duration = Duration::from_secs(60);

/// At most this many addresses are tracked at once (a few MiB). When the table is full of
/// addresses that are all within their window, a new address is not tracked: it gets 401s, never
/// a 429, which is the safe side for an honest client and still no shortcut past the credential
/// check for a guesser.
const MAX_TRACKED: usize = 100_000;

/// An address past its limit: how long until it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds for the `Retry-After` header, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// The first failure of the current window.
    since: Instant,
    count: u32,
}

#[derive(Debug)]
pub struct AuthThrottle {
    /// Failures allowed per address and window; 0 turns the throttle off.
    limit: u32,
    window: Duration,
    table: Mutex<HashMap<IpAddr, Failures>>,
}

impl AuthThrottle {
    pub fn new(failures_per_minute: u32) -> Self {
        Self::with_window(failures_per_minute, WINDOW)
    }

    /// A throttle counting over `window` (tests use short ones).
    pub fn with_window(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Before a credential is checked: `Err` when `peer` has used up its failures.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), Throttled> {
        self.check_at(peer, Instant::now())
    }

    /// After a credential was wrong (or missing): one more failure for `peer`.
    pub fn failed(&self, peer: Option<IpAddr>) {
        self.failed_at(peer, Instant::now());
    }

    fn check_at(&self, peer: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let (Some(peer), true) = (peer, self.limit > 0) else {
            return Ok(());
        };
        let Ok(table) = self.table.lock() else {
            return Ok(());
        };
        match table.get(&client(peer)) {
            Some(f) if f.count >= self.limit => {
                let elapsed = now.saturating_duration_since(f.since);
                if elapsed < self.window {
                    Err(Throttled {
                        retry_after: self.window - elapsed,
                    })
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn failed_at(&self, peer: Option<IpAddr>, now: Instant) {
        let (Some(peer), true) = (peer, self.limit > 0) else {
            return;
        };
        let Ok(mut table) = self.table.lock() else {
            return;
        };
        let key = client(peer);
        if !table.contains_key(&key) && table.len() >= MAX_TRACKED {
            let window = self.window;
            table.retain(|_, f| now.saturating_duration_since(f.since) < window);
            if table.len() >= MAX_TRACKED {
                tracing::warn!(
                    tracked = table.len(),
                    "authentication throttle table is full; this address is not throttled"
                );
                return;
            }
        }
        let entry = table.entry(key).or_insert(Failures { since: now, count: 0 });
        if now.saturating_duration_since(entry.since) >= self.window {
            *entry = Failures { since: now, count: 0 };
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// How many addresses are tracked (for tests and a gauge).
    pub fn tracked(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }
}

/// The unit an address is counted by: IPv4 (also when mapped into IPv6) as is, IPv6 by /64.
fn client(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn the_limit_is_per_address_and_the_window_ends() {
        let throttle = AuthThrottle::with_window(3, Duration::from_secs(60));
        let start = Instant::now();
        let guesser = ip("203.0.113.7");
        for n in 0..3 {
            assert_eq!(
                throttle.check_at(guesser, start),
                Ok(()),
                "failure {n} is still checked"
            );
            throttle.failed_at(guesser, start + Duration::from_secs(n));
        }
        let refused = throttle.check_at(guesser, start + Duration::from_secs(10));
        assert_eq!(
            refused,
            Err(Throttled {
                retry_after: Duration::from_secs(50)
            })
        );
        assert_eq!(refused.unwrap_err().retry_after_secs(), 50);
        assert_eq!(throttle.check_at(ip("203.0.113.8"), start), Ok(()), "another address");
        assert_eq!(throttle.check_at(None, start), Ok(()), "no address known");
        assert_eq!(
            throttle.check_at(guesser, start + Duration::from_secs(60)),
            Ok(()),
            "the window is over"
        );
        throttle.failed_at(guesser, start + Duration::from_secs(61));
        assert_eq!(
            throttle.check_at(guesser, start + Duration::from_secs(61)),
            Ok(()),
            "a new window counts from 1"
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let throttle = AuthThrottle::with_window(2, Duration::from_secs(60));
        let now = Instant::now();
        throttle.failed_at(ip("2001:db8:1:2::1"), now);
        throttle.failed_at(ip("2001:db8:1:2:ffff::9"), now);
        assert!(throttle.check_at(ip("2001:db8:1:2::abcd"), now).is_err());
        assert!(throttle.check_at(ip("2001:db8:1:3::1"), now).is_ok());
        throttle.failed_at(ip("::ffff:198.51.100.4"), now);
        throttle.failed_at(ip("198.51.100.4"), now);
        assert!(throttle.check_at(ip("198.51.100.4"), now).is_err());
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = AuthThrottle::new(0);
        for _ in 0..100 {
            throttle.failed(ip("192.0.2.1"));
        }
        assert_eq!(throttle.check(ip("192.0.2.1")), Ok(()));
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let t = |ms| Throttled {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(t(1).retry_after_secs(), 1);
        assert_eq!(t(1000).retry_after_secs(), 1);
        assert_eq!(t(1001).retry_after_secs(), 2);
        assert_eq!(t(0).retry_after_secs(), 1);
    }
}
