//! Console sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie, the session itself
//! (its CSRF token and age) in memory. A restart signs everyone out, which is the safe side; a
//! deployment with several replicas needs sticky sessions for the console (docs/console.md).
//!
//! Only the SHA-256 of a session id is kept, so the table never holds a usable cookie value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "console_session";
/// The sign-in form's own CSRF cookie (there is no session yet to tie a token to).
pub const SIGN_IN_COOKIE: &str = "console_sign_in";
/// A session ends after this long without a request...
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// ...and after this long in any case (the cookie's `Max-Age` too).
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; the oldest goes first when a new one would exceed it.
const MAX_SESSIONS: usize = 1024;

struct Session {
    csrf: String,
    started: Instant,
    last_seen: Instant,
}

/// The signed-in sessions of this process.
#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
}

/// A signed-in operator's session, as a request sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The token every form of this session carries and every change checks.
    pub csrf: String,
}

/// 32 random bytes from the operating system, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Constant-time equality of two tokens (length included).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()).ct_eq(&Sha256::digest(b.as_bytes())).into()
}

impl Sessions {
    /// Starts a session; returns the cookie value.
    pub fn start(&self) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            csrf: random_token(),
            started: now,
            last_seen: now,
        };
        if let Ok(mut table) = self.table.lock() {
            table.retain(|_, s| alive(s, now));
            if table.len() >= MAX_SESSIONS {
                if let Some(oldest) = table.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| *k) {
                    table.remove(&oldest);
                }
            }
            table.insert(digest(&id), session);
        }
        id
    }

    /// The live session of a cookie value, touched (its idle timer restarts).
    pub fn find(&self, id: &str) -> Option<SessionInfo> {
        let now = Instant::now();
        let mut table = self.table.lock().ok()?;
        let key = digest(id);
        let session = table.get_mut(&key)?;
        if !alive(session, now) {
            table.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(SessionInfo {
            csrf: session.csrf.clone(),
        })
    }

    /// Ends the session of a cookie value (sign-out).
    pub fn end(&self, id: &str) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(&digest(id));
        }
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) < IDLE_TIMEOUT && now.duration_since(s.started) < MAX_AGE
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, scoped to `/console`, `Secure` when the
/// console is served over TLS. `max_age` zero deletes the cookie.
pub fn cookie(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> String {
    let mut c = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict",
        max_age.as_secs()
    );
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_at_sign_out() {
        let sessions = Sessions::default();
        let id = sessions.start();
        let info = sessions.find(&id).expect("live");
        assert_eq!(info.csrf.len(), 43);
        assert!(sessions.find("forged").is_none());
        sessions.end(&id);
        assert!(sessions.find(&id).is_none());
    }

    #[test]
    fn cookies_are_read_from_the_header() {
        let h = "a=1; console_session=xyz; b=2";
        assert_eq!(cookie_value(h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(h, "c"), None);
        assert!(cookie("n", "v", "/console", MAX_AGE, true).ends_with("HttpOnly; SameSite=Strict; Secure"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("", "abc"));
    }
}
