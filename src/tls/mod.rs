//! HTTPS in the server: rustls (on ring, no OpenSSL) behind actix-web, TLS 1.2 and 1.3 only,
//! HTTP/1.1 and HTTP/2 by ALPN.
//!
//! The certificate is served through a resolver (`ServingCert`) whose certificate can be
//! swapped while the server runs: `CertReloader` notices when `server.tls.cert_file` or
//! `key_file` change on disk (checked every second, and at once on SIGHUP), loads the pair, and
//! swaps it in for the next handshake. A pair that does not load (unreadable, not PEM, a key
//! that does not belong to the certificate, half written) is refused with one log line and the
//! old certificate stays; once both files are consistent again it is taken.
//!
//! With `server.tls.client_ca_file`, the server asks every client for a certificate signed by
//! that CA; a client may still connect without one (Empayre's sender has none), and an Orbipay
//! client whose configuration names a `tls_subject` is refused unless its certificate names it
//! (see `identity`).

pub mod identity;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, X509Certificate};

pub use identity::{ClientIdentity, TlsSubject};

/// How often the certificate files are looked at. A renewal is served within this (plus the
/// time the writer takes to finish both files).
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} {path}: {message}")]
    File {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("server.tls: {0}")]
    Config(String),
}

impl TlsError {
    fn file(key: &'static str, path: &Path, message: impl std::fmt::Display) -> Self {
        Self::File {
            key,
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for the listener, and the reloader of its certificate: the files
/// of `[server.tls]` (an empty `client_ca_file`: no client certificates asked for). Paths, not
/// the settings type, so that `settings` (which parses `TlsSubject`) and `tls` do not import
/// each other.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: &Path,
) -> Result<(ServerConfig, Arc<CertReloader>), TlsError> {
    let provider = provider();
    let reloader = Arc::new(CertReloader::load(cert_file.to_path_buf(), key_file.to_path_buf())?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca(client_ca_file)? {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                // Ask, do not require: Empayre's sender has no client certificate, and only the
                // Orbipay clients that name a `tls_subject` need one.
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::file("server.tls.client_ca_file", client_ca_file, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(reloader.resolver.clone());
    Ok((config, reloader))
}

fn client_ca(path: &Path) -> Result<Option<RootCertStore>, TlsError> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let key = "server.tls.client_ca_file";
    let pem = std::fs::read(path).map_err(|e| TlsError::file(key, path, e))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsError::file(key, path, e))?;
        roots.add(cert).map_err(|e| TlsError::file(key, path, e))?;
    }
    if roots.is_empty() {
        return Err(TlsError::file(key, path, "holds no PEM certificate"));
    }
    Ok(Some(roots))
}

/// The certificate the next handshake gets. Reading it is one uncontended read lock.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| key.clone())
    }
}

/// A certificate and key as loaded, with what the log says about them.
struct LoadedPair {
    key: Arc<CertifiedKey>,
    summary: String,
}

/// Reads a PEM chain and its private key (PKCS#8, PKCS#1 or SEC1), and checks that the key
/// belongs to the first certificate.
fn load_pair(cert_path: &Path, key_path: &Path) -> Result<LoadedPair, TlsError> {
    let cert_key = "server.tls.cert_file";
    let pem = std::fs::read(cert_path).map_err(|e| TlsError::file(cert_key, cert_path, e))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(cert_key, cert_path, e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::file(cert_key, cert_path, "holds no PEM certificate"));
    };
    let (_, parsed) =
        X509Certificate::from_der(leaf).map_err(|e| TlsError::file(cert_key, cert_path, format!("not X.509: {e}")))?;
    let not_after = parsed.validity().not_after;
    let summary = format!("subject \"{}\", valid until {}", parsed.subject(), not_after);
    let expired = not_after.timestamp() < chrono::Utc::now().timestamp();

    let key_key = "server.tls.key_file";
    let key_pem = std::fs::read(key_path).map_err(|e| TlsError::file(key_key, key_path, e))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::file(key_key, key_path, e))?;
    let key = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| {
        TlsError::file(
            key_key,
            key_path,
            format!("does not go with the certificate in {}: {e}", cert_path.display()),
        )
    })?;
    if expired {
        tracing::warn!(cert_file = %cert_path.display(), %summary, "the TLS certificate has expired");
    }
    Ok(LoadedPair {
        key: Arc::new(key),
        summary,
    })
}

/// What identifies a version of a file: a renewal changes at least one of these (a rename
/// over the file changes the inode, an edit in place the time or size).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified_nanos: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified_nanos: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    })
}

/// Watches the certificate and key files and swaps a renewed pair into the `ServingCert`.
pub struct CertReloader {
    cert_file: PathBuf,
    key_file: PathBuf,
    resolver: Arc<ServingCert>,
    /// The stamps of the pair last looked at (loaded or refused), so a refused pair is
    /// reported once, not every second.
    seen: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

/// What a reload check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Loaded(String),
    Refused(String),
}

impl CertReloader {
    fn load(cert_file: PathBuf, key_file: PathBuf) -> Result<Self, TlsError> {
        let stamps = (stamp(&cert_file), stamp(&key_file));
        let pair = load_pair(&cert_file, &key_file)?;
        tracing::info!(cert_file = %cert_file.display(), certificate = %pair.summary, "TLS certificate loaded");
        Ok(Self {
            cert_file,
            key_file,
            resolver: Arc::new(ServingCert {
                current: RwLock::new(pair.key),
            }),
            seen: Mutex::new(stamps),
        })
    }

    /// Loads the pair again if either file changed since the last look (`force`: even if not).
    pub fn check(&self, force: bool) -> Reload {
        let Ok(mut seen) = self.seen.lock() else {
            return Reload::Unchanged;
        };
        let now = (stamp(&self.cert_file), stamp(&self.key_file));
        if !force && now == *seen {
            return Reload::Unchanged;
        }
        *seen = now;
        match load_pair(&self.cert_file, &self.key_file) {
            Ok(pair) => {
                if let Ok(mut current) = self.resolver.current.write() {
                    *current = pair.key;
                }
                tracing::info!(cert_file = %self.cert_file.display(), certificate = %pair.summary, "TLS certificate reloaded; new connections get it");
                Reload::Loaded(pair.summary)
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate change refused; still serving the previous certificate");
                Reload::Refused(e.to_string())
            }
        }
    }

    /// Checks the files every `RELOAD_CHECK_INTERVAL` on a thread of its own, until the server
    /// that uses the certificate is gone.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<()> {
        let reloader = Arc::clone(self);
        std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || loop {
                std::thread::sleep(RELOAD_CHECK_INTERVAL);
                // The reloader holds one reference to the resolver, each server worker's rustls
                // configuration another: when only ours is left, the server has stopped.
                if Arc::strong_count(&reloader.resolver) <= 1 {
                    return;
                }
                reloader.check(false);
            })?;
        Ok(())
    }
}
