//! The Empayre API token of a source (`api_token`): a secret biller-inbox must *send*, so unlike
//! the credentials it only checks, it cannot be configured as a digest.
//!
//! Forms: a plain string, or `{ file = "/run/secrets/empayre-token" }` (the file's content,
//! surrounding whitespace dropped; `crate::secret::read_secret_file`), so the token need not sit
//! in a configuration file. The file is read when the configuration is loaded; an unreadable,
//! empty or world-readable file stops start-up naming the file, never the content. `Debug` shows
//! only which form was used.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// What the configuration says: the token itself or where to read it.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenForm {
    Plain(String),
    File { file: PathBuf },
}

#[derive(Clone, Deserialize)]
#[serde(try_from = "TokenForm")]
pub struct ApiToken {
    value: String,
    /// Where the token came from, for `Debug` and messages: `inline` or the file's path.
    origin: String,
}

impl ApiToken {
    /// An inline token (tests, programmatic settings).
    pub fn inline(value: impl Into<String>) -> Result<Self, String> {
        Self::try_from(TokenForm::Plain(value.into()))
    }

    /// The token, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// True when no token is configured (an empty inline string).
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// `inline` or `file <path>`: safe to print.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Replaces every occurrence of the token in `text` (a message a server sent back, say),
    /// so a text that echoes it can still be logged or shown.
    pub fn scrub(&self, text: &str) -> String {
        if self.value.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.value, "[api_token]")
    }
}

impl TryFrom<TokenForm> for ApiToken {
    type Error = String;

    fn try_from(form: TokenForm) -> Result<Self, String> {
        let (value, origin) = match form {
            TokenForm::Plain(value) => (value, "inline".to_string()),
            TokenForm::File { file } => {
                // The same rules as every secret file: trimmed, and refused when every user may
                // read it.
                let value = crate::secret::read_secret_file(&file).map_err(|e| format!("api_token: {e}"))?;
                (value, format!("file {}", file.display()))
            }
        };
        // It goes into an HTTP header as `Bearer <token>`: visible ASCII only. The message never
        // repeats the value.
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "api_token ({origin}) must be visible ASCII without spaces or line breaks"
            ));
        }
        Ok(Self { value, origin })
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("origin", &self.origin)
            .field("set", &!self.value.is_empty())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &std::path::Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn from_toml(text: &str) -> Result<ApiToken, String> {
        #[derive(Deserialize)]
        struct Holder {
            api_token: ApiToken,
        }
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<Holder>())
            .map(|h| h.api_token)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn inline_and_file_forms_are_read_and_never_shown() {
        let token = from_toml("api_token = \"tok-inline-123\"").expect("inline");
        assert_eq!(token.expose(), "tok-inline-123");
        assert!(!format!("{token:?}").contains("tok-inline-123"));

        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "tok-from-file-456\n").expect("write");
        set_mode(&path, 0o600);
        let token = from_toml(&format!("api_token = {{ file = \"{}\" }}", path.display())).expect("file");
        assert_eq!(token.expose(), "tok-from-file-456");
        assert!(token.origin().starts_with("file "));
        assert!(!format!("{token:?}").contains("tok-from-file-456"));
    }

    #[test]
    fn unusable_tokens_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        set_mode(&empty, 0o600);
        let open = dir.path().join("open");
        std::fs::write(&open, "tok-open-secret").expect("write");
        set_mode(&open, 0o644);
        let missing = dir.path().join("missing");
        for (text, needle) in [
            (format!("api_token = {{ file = \"{}\" }}", empty.display()), "is empty"),
            (format!("api_token = {{ file = \"{}\" }}", missing.display()), "missing"),
            ("api_token = \"has space-secret\"".to_string(), "visible ASCII"),
            (format!("api_token = {{ file = \"{}\" }}", open.display()), "every user"),
        ] {
            let err = from_toml(&text).expect_err(&text);
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains("space-secret") && !err.contains("open-secret"), "{err}");
        }
    }

    #[test]
    fn scrub_hides_an_echoed_token() {
        let token = ApiToken::inline("tok-echo-789").expect("token");
        assert_eq!(token.scrub("bad token tok-echo-789!"), "bad token [api_token]!");
    }
}
