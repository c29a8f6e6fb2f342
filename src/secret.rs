//! Credentials biller-inbox checks (`api-key` values of EBPP clients, `admin.token`), kept so the
//! configuration file need not hold them in plain text.
//!
//! Three forms, wherever such a credential is configured:
//! - `"the-secret"`: inline (the demo set-up; tests);
//! - `{ sha256 = "64 hex digits" }`: only the SHA-256 digest (`biller-inbox hash-secret` prints
//!   it). Enough to check a credential, never enough to send one;
//! - `{ file = "/run/secrets/x" }`: read from a file when the configuration is loaded (surrounding
//!   whitespace dropped). A file any user of the machine can read is refused.
//!
//! Whatever the form, the server keeps the digest and checks a credential by hashing what it was
//! given and comparing the two digests in constant time, so neither the content nor the length
//! of a wrong guess changes how long the check takes. `Debug` and every message name the form
//! (and a file's path), never the value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What the configuration says.
#[derive(Deserialize)]
#[serde(untagged)]
enum SecretForm {
    Plain(String),
    Digest { sha256: String },
    File { file: PathBuf },
}

/// A credential that is checked, never printed.
#[derive(Clone, Deserialize)]
#[serde(try_from = "SecretForm")]
pub struct Secret {
    digest: [u8; 32],
    /// The value itself when the configuration gave it (inline or file): a command that must
    /// *send* the credential (the admin token of `empayre reconcile`) needs it.
    plain: Option<String>,
    origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    /// An inline value; `Inline(true)` when it is empty (a credential that is not set).
    Inline {
        empty: bool,
    },
    Digest,
    File(PathBuf),
}

impl Secret {
    /// An inline value (the demo configuration, tests, programmatic settings).
    pub fn inline(value: impl Into<String>) -> Self {
        let value = value.into();
        Self {
            digest: sha256(value.as_bytes()),
            origin: Origin::Inline {
                empty: value.is_empty(),
            },
            plain: Some(value),
        }
    }

    /// A secret given by its digest (64 hex digits, either case).
    pub fn from_digest(hex_digest: &str) -> Result<Self, String> {
        let bytes = hex::decode(hex_digest.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| "sha256 must be 64 hex digits (the output of `biller-inbox hash-secret`)".to_string())?;
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes);
        if digest == sha256(b"") {
            return Err("sha256 is the digest of an empty secret".into());
        }
        Ok(Self {
            digest,
            plain: None,
            origin: Origin::Digest,
        })
    }

    /// A secret read from `path` (see `read_secret_file`).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let value = read_secret_file(path)?;
        Ok(Self {
            digest: sha256(value.as_bytes()),
            plain: Some(value),
            origin: Origin::File(path.to_path_buf()),
        })
    }

    /// Whether `given` is this secret: constant time in `given` and in the secret.
    pub fn matches(&self, given: &[u8]) -> bool {
        !self.is_empty() && bool::from(sha256(given).ct_eq(&self.digest))
    }

    /// An empty inline value: not set (for `admin.token`, the admin API is off).
    pub fn is_empty(&self) -> bool {
        self.origin == Origin::Inline { empty: true }
    }

    /// The value, when the configuration gave it rather than its digest. Only for sending it.
    pub fn expose(&self) -> Option<&str> {
        self.plain.as_deref()
    }

    /// `inline`, `sha256` or `file <path>`: safe to print.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Inline { .. } => "inline".into(),
            Origin::Digest => "sha256".into(),
            Origin::File(path) => format!("file {}", path.display()),
        }
    }
}

impl TryFrom<SecretForm> for Secret {
    type Error = String;

    fn try_from(form: SecretForm) -> Result<Self, String> {
        match form {
            SecretForm::Plain(value) => Ok(Self::inline(value)),
            SecretForm::Digest { sha256 } => Self::from_digest(&sha256),
            SecretForm::File { file } => Self::from_file(&file),
        }
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::inline(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::inline(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("form", &self.describe())
            .field("set", &!self.is_empty())
            .finish()
    }
}

/// The SHA-256 digest of `value`, lower-case hex: what `hash-secret` prints and
/// `{ sha256 = "..." }` takes.
pub fn digest_hex(value: &[u8]) -> String {
    hex::encode(sha256(value))
}

fn sha256(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// Reads a secret from a file: its content without surrounding whitespace (a trailing newline
/// from `echo` or an editor is not part of it). Refuses a file every user may read (a secret
/// file belongs to the service's user, mode 0600 or 0640 and the like), an unreadable file and
/// an empty one. Messages name the file, never what is in it.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| format!("secret file {shown}: {e}"))?;
    refuse_world_readable(path, &metadata)?;
    let text = std::fs::read(path).map_err(|e| format!("secret file {shown}: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| format!("secret file {shown} is not UTF-8 text"))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("secret file {shown} is empty"));
    }
    Ok(value.to_string())
}

#[cfg(unix)]
fn refuse_world_readable(path: &Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o004 != 0 {
        return Err(format!(
            "secret file {} can be read by every user of this machine (mode {mode:03o}); \
             restrict it, for example `chmod 600 {}` (or 640 with the service's group)",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_world_readable(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Secret, String> {
        #[derive(Deserialize)]
        struct Holder {
            secret: Secret,
        }
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<Holder>())
            .map(|h| h.secret)
            .map_err(|e| e.to_string())
    }

    fn secret_file(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn every_form_checks_the_same_secret_and_none_shows_it() {
        let dir = tempfile::tempdir().expect("dir");
        let file = secret_file(dir.path(), "key", "  s3cret-value\n", 0o600);
        let digest = digest_hex(b"s3cret-value");
        assert_eq!(
            digest_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "the FIPS 180-2 example"
        );
        let forms = [
            ("secret = \"s3cret-value\"".to_string(), "inline", Some("s3cret-value")),
            (format!("secret = {{ sha256 = \"{digest}\" }}"), "sha256", None),
            (
                format!("secret = {{ sha256 = \"{}\" }}", digest.to_uppercase()),
                "sha256",
                None,
            ),
            (
                format!("secret = {{ file = \"{}\" }}", file.display()),
                "file ",
                Some("s3cret-value"),
            ),
        ];
        for (text, form, plain) in forms {
            let secret = from_toml(&text).expect(&text);
            assert!(secret.matches(b"s3cret-value"), "{text}");
            for wrong in [
                &b""[..],
                b"s3cret-valu",
                b"s3cret-value2",
                b"S3CRET-VALUE",
                b" s3cret-value",
            ] {
                assert!(!secret.matches(wrong), "{text} matched {wrong:?}");
            }
            assert!(secret.describe().starts_with(form), "{}", secret.describe());
            assert_eq!(secret.expose(), plain);
            assert!(!format!("{secret:?}").contains("s3cret"), "{secret:?}");
        }
    }

    #[test]
    fn an_empty_inline_value_is_unset_and_matches_nothing() {
        let empty = Secret::inline("");
        assert!(empty.is_empty());
        assert!(!empty.matches(b""));
        assert!(!Secret::inline("x").is_empty());
    }

    #[test]
    fn unusable_forms_are_refused_without_echoing_the_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let open = secret_file(dir.path(), "open", "leaky-secret\n", 0o644);
        let empty = secret_file(dir.path(), "empty", " \n", 0o600);
        let missing = dir.path().join("missing");
        let cases = [
            (format!("secret = {{ file = \"{}\" }}", open.display()), "every user"),
            (format!("secret = {{ file = \"{}\" }}", empty.display()), "is empty"),
            (format!("secret = {{ file = \"{}\" }}", missing.display()), "missing"),
            ("secret = { sha256 = \"abc\" }".to_string(), "64 hex digits"),
            (
                format!("secret = {{ sha256 = \"{}\" }}", "zz".repeat(32)),
                "64 hex digits",
            ),
            (
                format!("secret = {{ sha256 = \"{}\" }}", digest_hex(b"")),
                "empty secret",
            ),
        ];
        for (text, needle) in cases {
            let err = from_toml(&text).expect_err(&text);
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains("leaky-secret"), "{err}");
        }
        // Group-readable is the service's group's business.
        let group = secret_file(dir.path(), "group", "grouped\n", 0o640);
        assert!(Secret::from_file(&group).expect("0640").matches(b"grouped"));
    }
}
