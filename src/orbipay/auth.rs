//! EBPP authentication: `client-key` plus one complete credential set of that client
//! (docs/orbipay.md). Secrets are compared in constant time and never logged.

use actix_web::http::header::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use crate::secret::Secret;
use crate::settings::OrbipayClient;
use crate::tls::{ClientIdentity, TlsSubject};

const CLIENT_KEY_HEADER: &str = "client-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No client is configured: the channel is closed (503).
    NotConfigured,
    /// 401: the message never says which part was wrong.
    Unauthorized,
    /// 403: the credentials match a disabled client.
    Forbidden,
}

struct Client {
    key: String,
    enabled: bool,
    sets: Vec<Vec<(HeaderName, Secret)>>,
    /// The client certificate must name this (`tls_subject`).
    certificate: Option<TlsSubject>,
}

pub struct OrbipayAuth {
    clients: Vec<Client>,
}

impl OrbipayAuth {
    /// Built from validated settings (header names were checked there).
    pub fn new(clients: &[OrbipayClient]) -> Self {
        let clients = clients
            .iter()
            .map(|c| Client {
                key: c.client_key.clone(),
                enabled: c.enabled,
                certificate: c.tls_subject.clone(),
                sets: c
                    .credentials
                    .iter()
                    .map(|set| {
                        set.iter()
                            .filter_map(|(name, value)| {
                                let name = HeaderName::try_from(name.to_ascii_lowercase()).ok()?;
                                Some((name, value.clone()))
                            })
                            .collect()
                    })
                    .collect(),
            })
            .collect();
        Self { clients }
    }

    pub fn is_configured(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Returns the authenticated client key. `certificate` is the connection's verified client
    /// certificate, if any: a client with a `tls_subject` needs one that names it.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        certificate: Option<&ClientIdentity>,
    ) -> Result<String, AuthFailure> {
        if self.clients.is_empty() {
            return Err(AuthFailure::NotConfigured);
        }
        let sent_key = headers.get(CLIENT_KEY_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        // Every client and every set is examined, so the time taken does not tell which
        // client exists or which header was wrong.
        let mut found: Option<&Client> = None;
        for client in &self.clients {
            let key_matches = client.key.as_bytes().ct_eq(sent_key);
            let mut any_set = subtle::Choice::from(0u8);
            for set in &client.sets {
                let mut all = subtle::Choice::from(1u8);
                for (name, expected) in set {
                    let sent = headers.get(name).map(|v| v.as_bytes()).unwrap_or_default();
                    // Hashes what was sent and compares digests in constant time.
                    all &= subtle::Choice::from(u8::from(expected.matches(sent)));
                }
                any_set |= all;
            }
            if bool::from(key_matches & any_set) {
                found = Some(client);
            }
        }
        // Which certificate a client must show is not a secret: checked after the loop.
        if let Some(client) = found {
            let shown = match &client.certificate {
                None => true,
                Some(subject) => certificate.is_some_and(|c| subject.matches(c)),
            };
            if !shown {
                return Err(AuthFailure::Unauthorized);
            }
        }
        match found {
            Some(c) if c.enabled => Ok(c.key.clone()),
            Some(_) => Err(AuthFailure::Forbidden),
            None => Err(AuthFailure::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use std::collections::BTreeMap;

    fn client(key: &str, enabled: bool, sets: &[&[(&str, &str)]]) -> OrbipayClient {
        OrbipayClient {
            client_key: key.into(),
            enabled,
            tls_subject: None,
            credentials: sets
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| (k.to_string(), Secret::from(*v)))
                        .collect::<BTreeMap<_, _>>()
                })
                .collect(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn table() {
        let auth = OrbipayAuth::new(&[
            client(
                "a",
                true,
                &[&[("api-key", "old")], &[("api-key", "new"), ("x-extra", "e")]],
            ),
            client("off", false, &[&[("api-key", "k")]]),
        ]);
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            Result<String, AuthFailure>,
        );
        let cases: Vec<Case> = vec![
            ("old key", vec![("client-key", "a"), ("api-key", "old")], Ok("a".into())),
            (
                "rotated set",
                vec![("client-key", "a"), ("api-key", "new"), ("x-extra", "e")],
                Ok("a".into()),
            ),
            (
                "incomplete set",
                vec![("client-key", "a"), ("api-key", "new")],
                Err(AuthFailure::Unauthorized),
            ),
            (
                "wrong key",
                vec![("client-key", "a"), ("api-key", "nope")],
                Err(AuthFailure::Unauthorized),
            ),
            (
                "no client key",
                vec![("api-key", "old")],
                Err(AuthFailure::Unauthorized),
            ),
            (
                "unknown client",
                vec![("client-key", "b"), ("api-key", "old")],
                Err(AuthFailure::Unauthorized),
            ),
            (
                "disabled",
                vec![("client-key", "off"), ("api-key", "k")],
                Err(AuthFailure::Forbidden),
            ),
            (
                "disabled wrong",
                vec![("client-key", "off"), ("api-key", "x")],
                Err(AuthFailure::Unauthorized),
            ),
        ];
        for (name, h, want) in cases {
            assert_eq!(auth.authenticate(&headers(&h), None), want, "{name}");
        }
        assert_eq!(
            OrbipayAuth::new(&[]).authenticate(&headers(&[]), None),
            Err(AuthFailure::NotConfigured)
        );
    }

    #[test]
    fn a_client_naming_a_certificate_needs_it() {
        let mut with_cert = client("tls", true, &[&[("api-key", "k")]]);
        with_cert.tls_subject = Some(TlsSubject::parse("CN=ebpp-client").expect("subject"));
        let auth = OrbipayAuth::new(&[with_cert, client("plain", true, &[&[("api-key", "p")]])]);
        let right = ClientIdentity {
            subject: vec![("CN".into(), "ebpp-client".into())],
            alt_names: vec![],
        };
        let wrong = ClientIdentity {
            subject: vec![("CN".into(), "someone-else".into())],
            alt_names: vec![],
        };
        let tls_headers = headers(&[("client-key", "tls"), ("api-key", "k")]);
        assert_eq!(auth.authenticate(&tls_headers, Some(&right)), Ok("tls".into()));
        assert_eq!(
            auth.authenticate(&tls_headers, Some(&wrong)),
            Err(AuthFailure::Unauthorized)
        );
        assert_eq!(auth.authenticate(&tls_headers, None), Err(AuthFailure::Unauthorized));
        // A client without tls_subject does not care about certificates.
        let plain_headers = headers(&[("client-key", "plain"), ("api-key", "p")]);
        assert_eq!(auth.authenticate(&plain_headers, None), Ok("plain".into()));
        assert_eq!(auth.authenticate(&plain_headers, Some(&wrong)), Ok("plain".into()));
    }
}
