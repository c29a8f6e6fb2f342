//! Who a client certificate names, and the `tls_subject` an Orbipay client may require.
//!
//! rustls has already checked the certificate against `server.tls.client_ca_file` when this code
//! sees it; what is left is to read its subject and subject alternative names once per connection
//! (`on_connect`) and to compare them with what a client's configuration names.

use std::any::Any;
use std::net::IpAddr;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use serde::Deserialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The verified client certificate of a TLS connection: its subject attributes in certificate
/// order (`("CN", "ebpp-client")`) and its subject alternative names as text (DNS names, e-mail
/// addresses, URIs, IP addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    pub subject: Vec<(String, String)>,
    pub alt_names: Vec<String>,
}

impl ClientIdentity {
    /// Reads a DER certificate; `None` when it cannot be parsed (rustls accepted it, so this
    /// does not happen with a sane CA).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let registry = x509_parser::objects::oid_registry();
        let subject = cert
            .subject()
            .iter_attributes()
            .filter_map(|attr| {
                let name = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                    .map(str::to_string)
                    .unwrap_or_else(|_| attr.attr_type().to_id_string());
                Some((name, attr.as_str().ok()?.to_string()))
            })
            .collect();
        let mut alt_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        alt_names.push((*s).to_string())
                    }
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                            _ => None,
                        };
                        alt_names.extend(ip.map(|ip| ip.to_string()));
                    }
                    _ => {}
                }
            }
        }
        Some(Self { subject, alt_names })
    }

    /// Stores the identity of a TLS connection's client certificate in the connection's
    /// extensions, where `HttpRequest::conn_data` finds it. Given to `HttpServer::on_connect`;
    /// plain connections and TLS connections without a client certificate get nothing.
    pub fn on_connect(connection: &dyn Any, extensions: &mut Extensions) {
        let Some(tls) = connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>() else {
            return;
        };
        let (_, session) = tls.get_ref();
        let leaf = session.peer_certificates().and_then(|chain| chain.first());
        if let Some(identity) = leaf.and_then(|der| Self::from_der(der)) {
            extensions.insert(identity);
        }
    }
}

/// What `[[orbipay.clients]] tls_subject` requires of the client certificate: either
/// distinguished-name attributes (`"CN=ebpp-client"`, `"CN=ebpp, O=Orbipay"`: every attribute
/// given must be in the certificate's subject with exactly that value; attribute names are
/// case-insensitive), or, without any `=`, one subject alternative name (`"ebpp.example.com"`,
/// an e-mail address, a URI or an IP address; DNS names compare case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSubject {
    Attributes(Vec<(String, String)>),
    AltName(String),
}

impl TlsSubject {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if !text.contains('=') {
            return Ok(Self::AltName(text.to_string()));
        }
        let mut attributes = Vec::new();
        for part in split_unescaped_commas(text) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not NAME=value (separate attributes with commas)"))?;
            let name = name.trim();
            let value = value.trim();
            if name.is_empty() || value.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') {
                return Err(format!("`{part}` is not NAME=value (such as CN=ebpp-client)"));
            }
            attributes.push((name.to_ascii_uppercase(), value.to_string()));
        }
        Ok(Self::Attributes(attributes))
    }

    /// Whether the certificate names what this requires.
    pub fn matches(&self, identity: &ClientIdentity) -> bool {
        match self {
            Self::Attributes(required) => required.iter().all(|(name, value)| {
                identity
                    .subject
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
            }),
            Self::AltName(wanted) => identity
                .alt_names
                .iter()
                .any(|n| n == wanted || (is_dns_like(n) && n.eq_ignore_ascii_case(wanted))),
        }
    }
}

impl<'de> Deserialize<'de> for TlsSubject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for TlsSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AltName(name) => f.write_str(name),
            Self::Attributes(attributes) => {
                let parts: Vec<String> = attributes.iter().map(|(n, v)| format!("{n}={v}")).collect();
                f.write_str(&parts.join(", "))
            }
        }
    }
}

/// `CN=a\, b, O=c` → [`CN=a, b`, `O=c`]: commas split attributes unless escaped with `\`.
fn split_unescaped_commas(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push(next);
                }
            }
            ',' => parts.push(String::new()),
            other => {
                if let Some(last) = parts.last_mut() {
                    last.push(other);
                }
            }
        }
    }
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// DNS names compare case-insensitively; e-mail addresses and URIs are compared exactly.
fn is_dns_like(name: &str) -> bool {
    !name.contains('@') && !name.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ClientIdentity {
        ClientIdentity {
            subject: vec![
                ("C".into(), "US".into()),
                ("O".into(), "Orbipay, Inc".into()),
                ("CN".into(), "ebpp-client".into()),
            ],
            alt_names: vec!["EBPP.example.com".into(), "ops@example.com".into(), "10.0.0.7".into()],
        }
    }

    #[test]
    fn subjects_match_by_attributes_or_alt_name() {
        let cases: &[(&str, bool)] = &[
            ("CN=ebpp-client", true),
            ("cn = ebpp-client", true),
            ("CN=ebpp-client, O=Orbipay\\, Inc", true),
            ("CN=ebpp-client, O=Other", false),
            ("CN=EBPP-CLIENT", false),
            ("CN=ebpp", false),
            ("ebpp.example.com", true),
            ("ops@example.com", true),
            ("OPS@example.com", false),
            ("10.0.0.7", true),
            ("other.example.com", false),
        ];
        for (text, want) in cases {
            let subject = TlsSubject::parse(text).expect(text);
            assert_eq!(subject.matches(&identity()), *want, "{text}");
        }
        assert!(!TlsSubject::parse("CN=x")
            .expect("parses")
            .matches(&ClientIdentity::default()));
    }

    #[test]
    fn bad_subjects_are_refused() {
        for text in ["", "  ", "CN=", "=x", "CN=a, junk", "C N=a"] {
            assert!(TlsSubject::parse(text).is_err(), "{text:?}");
        }
    }
}
