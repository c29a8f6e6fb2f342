//! `biller-inbox empayre register`: create the Empayre webhook of a shop and install the key it
//! signs with (docs/empayre.md).
//!
//! The steps, each of which can stop the command before anything changes:
//! 1. the key file must not hold a key the new webhook may not use (see [`KeyFile`]), unless
//!    `--force`;
//! 2. `getWebhooks`: a webhook for the same shop and URL is a duplicate, refused naming its id
//!    (a second one would deliver every event twice);
//! 3. `createWebhook` for `InvoicesTopic` (skipped by `--dry-run`). When its outcome is undefined
//!    (5xx, timeout) the webhooks are listed again: it may well exist;
//! 4. the returned `publicKey` (any form of B2) is parsed, written to the key file as SPKI PEM
//!    (atomically: a temp file, fsync, rename), and read back through the same loader the server
//!    uses, which must give the same key.
//!
//! The key is per party (B2.2): every webhook of the account carries the same one, which is how
//! step 1 can tell before creating anything whether the file's key will still be right.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::api::{ApiClient, ApiError, NewWebhook, Webhook};
use super::keys::{parse_public_key, SourceKey};

/// What we subscribe to by default: every invoice, payment and refund event the sink projects or
/// keeps (B1.10's subscribe names; the refund ones arrive as `Refund*`).
pub const DEFAULT_EVENT_TYPES: &[&str] = &[
    "InvoiceCreated",
    "InvoicePaid",
    "InvoiceCancelled",
    "InvoiceFulfilled",
    "PaymentStarted",
    "PaymentProcessed",
    "PaymentCaptured",
    "PaymentCancelled",
    "PaymentRefunded",
    "PaymentFailed",
    "PaymentRefundCreated",
    "PaymentRefundSucceeded",
    "PaymentRefundFailed",
];

/// Subscribe names beyond the default that the API accepts.
const OTHER_SUBSCRIBE_NAMES: &[&str] = &["PaymentUserInteractionRequested", "PaymentUserInteractionCompleted"];

/// Delivered `eventType` names whose subscribe name differs (B1.10): accepted on the command line
/// and translated, since operators read the delivered ones in our logs.
const DELIVERED_TO_SUBSCRIBE: &[(&str, &str)] = &[
    ("RefundCreated", "PaymentRefundCreated"),
    ("RefundSucceeded", "PaymentRefundSucceeded"),
    ("RefundFailed", "PaymentRefundFailed"),
    ("PaymentInteractionRequested", "PaymentUserInteractionRequested"),
    ("PaymentInteractionCompleted", "PaymentUserInteractionCompleted"),
];

/// The subscribe names for `--event-types` (comma-separated or repeated), in the order given,
/// without repeats; the defaults when none are given.
pub fn event_types(given: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in given
        .iter()
        .flat_map(|g| g.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let subscribe = DELIVERED_TO_SUBSCRIBE
            .iter()
            .find(|(delivered, _)| *delivered == name)
            .map(|(_, s)| *s)
            .or_else(|| {
                DEFAULT_EVENT_TYPES
                    .iter()
                    .chain(OTHER_SUBSCRIBE_NAMES)
                    .find(|s| **s == name)
                    .copied()
            })
            .ok_or_else(|| {
                format!(
                    "--event-types: {name} is not an event type a webhook can subscribe to (one of {}, {})",
                    DEFAULT_EVENT_TYPES.join(", "),
                    OTHER_SUBSCRIBE_NAMES.join(", ")
                )
            })?;
        if !out.iter().any(|s| s == subscribe) {
            out.push(subscribe.to_string());
        }
    }
    if out.is_empty() {
        out = DEFAULT_EVENT_TYPES.iter().map(|s| s.to_string()).collect();
    }
    Ok(out)
}

/// The webhook URL: an absolute http(s) URL of at most 1000 characters (the API's limit).
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("--url {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("--url {url:?} must be an http or https URL"));
    }
    if url.chars().count() > 1000 {
        return Err("--url is longer than the API's 1000 characters".into());
    }
    Ok(())
}

/// What the key file holds now.
#[derive(Debug)]
pub enum KeyFile {
    /// Missing or empty: the key can be written.
    Empty,
    /// A usable key.
    Key(SourceKey),
    /// Text no loader accepts (the server would not start with it).
    Unusable(String),
}

impl KeyFile {
    pub fn read(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::Empty),
            Err(e) => Err(format!("cannot read the key file {}: {e}", path.display())),
            Ok(text) if text.trim().is_empty() => Ok(Self::Empty),
            Ok(text) => Ok(match parse_public_key(&text) {
                Ok(key) => Self::Key(key),
                Err(e) => Self::Unusable(e.to_string()),
            }),
        }
    }
}

pub struct Request {
    pub shop_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub key_file: PathBuf,
    pub dry_run: bool,
    pub force: bool,
}

/// What the command did, for its output.
#[derive(Debug)]
pub enum Registered {
    /// `--dry-run`: nothing created, nothing written.
    DryRun,
    Created {
        webhook: Box<Webhook>,
        key_id: String,
        /// False when the file already held this very key.
        written: bool,
        /// The create's answer was lost (5xx, timeout) and the webhook was found by listing.
        recovered: Option<String>,
    },
}

/// Why the command stopped. Every message says what was (not) done.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("webhook {id} already delivers shop {shop} to {url} (active: {active}); nothing created")]
    Duplicate {
        id: String,
        shop: String,
        url: String,
        active: bool,
    },
    #[error("{0}")]
    KeyConflict(String),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("{0}")]
    Other(String),
}

/// The party's key as the account's existing webhooks show it, if any shows one that parses.
fn party_key(webhooks: &[Webhook]) -> Option<SourceKey> {
    webhooks
        .iter()
        .filter_map(|w| w.public_key.as_deref())
        .find_map(|text| parse_public_key(text).ok())
}

fn same(a: &SourceKey, b: &SourceKey) -> bool {
    a.spki_der() == b.spki_der()
}

fn find<'a>(webhooks: &'a [Webhook], shop: &str, url: &str) -> Option<&'a Webhook> {
    webhooks
        .iter()
        .find(|w| w.shop_id.as_deref() == Some(shop) && w.url == url)
}

pub async fn register(client: &ApiClient, request: &Request) -> Result<Registered, RegisterError> {
    let existing = KeyFile::read(&request.key_file).map_err(RegisterError::Other)?;
    let webhooks = client.get_webhooks().await?;
    if let Some(w) = find(&webhooks, &request.shop_id, &request.url) {
        return Err(RegisterError::Duplicate {
            id: w.id.clone(),
            shop: request.shop_id.clone(),
            url: request.url.clone(),
            active: w.active,
        });
    }
    let file = request.key_file.display();
    if !request.force {
        match (&existing, party_key(&webhooks)) {
            (KeyFile::Empty, _) => {}
            (KeyFile::Key(have), Some(party)) if same(have, &party) => {}
            (KeyFile::Key(have), Some(party)) => {
                return Err(RegisterError::KeyConflict(format!(
                    "{file} holds key {}, but the account's webhooks sign with key {}; nothing created \
                     (--force replaces the file's key)",
                    have.id, party.id
                )))
            }
            (KeyFile::Key(have), None) => {
                return Err(RegisterError::KeyConflict(format!(
                    "{file} already holds key {} and no webhook of the account shows which key the new one \
                     will get; nothing created (--force replaces the file's key)",
                    have.id
                )))
            }
            (KeyFile::Unusable(why), _) => {
                return Err(RegisterError::KeyConflict(format!(
                    "{file} holds no usable key ({why}); nothing created (--force overwrites it)"
                )))
            }
        }
    }
    if request.dry_run {
        return Ok(Registered::DryRun);
    }
    let new = NewWebhook {
        shop_id: request.shop_id.clone(),
        url: request.url.clone(),
        event_types: request.event_types.clone(),
    };
    let (webhook, recovered) = match client.create_webhook(&new).await {
        Ok(w) => (w, None),
        Err(e) if e.outcome_undefined() => {
            let listed = client.get_webhooks().await.map_err(|again| {
                RegisterError::Other(format!(
                    "{e}; whether the webhook was created is unknown, and listing the webhooks failed too \
                     ({again}); look in the Empayre account before running register again"
                ))
            })?;
            match find(&listed, &request.shop_id, &request.url) {
                Some(w) if w.public_key.is_some() => (w.clone(), Some(e.to_string())),
                Some(w) => {
                    return Err(RegisterError::Other(format!(
                        "{e}; webhook {} exists for shop {} and {}, but the list shows no key for it; \
                         nothing written",
                        w.id, request.shop_id, request.url
                    )))
                }
                None => {
                    return Err(RegisterError::Other(format!(
                        "{e}; no webhook for shop {} and {} exists, so none was created; run register again",
                        request.shop_id, request.url
                    )))
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    let text = webhook.public_key.as_deref().unwrap_or_default();
    let key = parse_public_key(text).map_err(|e| {
        RegisterError::Other(format!(
            "webhook {} was created, but its publicKey is not a key we can use ({e}); nothing written",
            webhook.id
        ))
    })?;
    if let KeyFile::Key(have) = &existing {
        if same(have, &key) {
            return Ok(Registered::Created {
                key_id: key.id.clone(),
                webhook: Box::new(webhook),
                written: false,
                recovered,
            });
        }
        if !request.force {
            return Err(RegisterError::KeyConflict(format!(
                "webhook {} was created, but its key {} differs from key {} in {file}; the file was not \
                 changed. Install the new key with --force, or by hand:\n{}",
                webhook.id,
                key.id,
                have.id,
                spki_pem(&key)
            )));
        }
    }
    write_key(&request.key_file, &key).map_err(|e| {
        RegisterError::Other(format!(
            "webhook {} was created, but its key could not be written: {e}. The key:\n{}",
            webhook.id,
            spki_pem(&key)
        ))
    })?;
    Ok(Registered::Created {
        key_id: key.id.clone(),
        webhook: Box::new(webhook),
        written: true,
        recovered,
    })
}

/// The key as SPKI PEM, the form the platform issues today: 64-character lines, LF, a final
/// newline.
pub fn spki_pem(key: &SourceKey) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.spki_der());
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// Writes the key atomically (temp file in the same folder, fsync, rename, fsync of the folder)
/// and reads it back through the server's loader.
fn write_key(path: &Path, key: &SourceKey) -> Result<(), String> {
    use std::io::Write;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(spki_pem(key).as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&folder)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(format!("{}: {e}", path.display()));
    }
    match KeyFile::read(path)? {
        KeyFile::Key(back) if same(&back, key) => Ok(()),
        _ => Err(format!("{} does not read back as the key just written", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_default_translate_and_refuse_unknown_names() {
        assert_eq!(event_types(&[]).expect("defaults").len(), DEFAULT_EVENT_TYPES.len());
        let given = vec![
            "PaymentCaptured,RefundSucceeded".to_string(),
            "PaymentCaptured".to_string(),
        ];
        assert_eq!(
            event_types(&given).expect("translated"),
            ["PaymentCaptured", "PaymentRefundSucceeded"]
        );
        let err = event_types(&["PaymentCapture".to_string()]).expect_err("typo");
        assert!(err.starts_with("--event-types: PaymentCapture is not"), "{err}");
    }

    #[test]
    fn webhook_urls_are_checked() {
        assert!(check_webhook_url("https://biller.example/empayre/webhook/demo").is_ok());
        for bad in ["biller.example/hook", "ftp://biller.example/x", "https://"] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
        assert!(check_webhook_url(&format!("https://b.example/{}", "x".repeat(1000))).is_err());
    }

    #[test]
    fn the_written_pem_reads_back_as_the_same_key() {
        let text = crate::test_data::read_text("fixtures/keys/empayre_test_public.pem");
        let key = parse_public_key(&text).expect("fixture key");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys/empayre.pem");
        write_key(&path, &key).expect("written");
        let pem = std::fs::read_to_string(&path).expect("read");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        match KeyFile::read(&path).expect("read back") {
            KeyFile::Key(back) => assert_eq!(back.id, key.id),
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(KeyFile::read(&path).expect("read"), KeyFile::Unusable(_)));
        assert!(matches!(
            KeyFile::read(&dir.path().join("none.pem")).expect("read"),
            KeyFile::Empty
        ));
    }
}
