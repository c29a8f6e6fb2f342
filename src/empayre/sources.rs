//! Configured Empayre sources and their keys, parsed and checked at start-up (A1).

use crate::settings::{EmpayreSettings, SettingsError};

use super::keys::{parse_public_key, SourceKey};
use super::signature::{parse_content_signature, verify, SignatureError};

pub struct Source {
    pub name: String,
    pub keys: Vec<SourceKey>,
    pub account_pointer: String,
}

pub struct Sources {
    list: Vec<Source>,
}

impl Sources {
    /// Reads every key of every source. A key that cannot be used stops start-up with a
    /// message naming the source; a key under 2048 bits is accepted with a warning.
    pub fn load(settings: &EmpayreSettings) -> Result<Self, SettingsError> {
        let mut list = Vec::with_capacity(settings.sources.len());
        for (i, source) in settings.sources.iter().enumerate() {
            let error = |what: String, e: &dyn std::fmt::Display| SettingsError {
                key: format!("empayre.sources[{i}].{what}"),
                message: format!("source {}: {e}", source.name),
            };
            let mut keys = Vec::new();
            for (j, text) in source.public_keys.iter().enumerate() {
                keys.push(parse_public_key(text).map_err(|e| error(format!("public_keys[{j}]"), &e))?);
            }
            for (j, path) in source.public_key_files.iter().enumerate() {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| error(format!("public_key_files[{j}]"), &format!("{}: {e}", path.display())))?;
                keys.push(parse_public_key(&text).map_err(|e| error(format!("public_key_files[{j}]"), &e))?);
            }
            for key in keys.iter().filter(|k| k.is_weak()) {
                tracing::warn!(source = %source.name, key_id = %key.id, bits = key.bits, "Empayre key under 2048 bits accepted");
            }
            list.push(Source {
                name: source.name.clone(),
                keys,
                account_pointer: source.account_pointer.clone(),
            });
        }
        Ok(Self { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Source> {
        self.list.iter().find(|s| s.name == name)
    }

    /// Verifies the body against `only` (a route naming the source) or every source. Returns
    /// the source and key that verified.
    pub fn verify<'a>(
        &'a self,
        only: Option<&'a Source>,
        body: &[u8],
        header: Option<&str>,
    ) -> Result<(&'a Source, &'a SourceKey), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let signature = parse_content_signature(header)?;
        let candidates: Vec<&Source> = match only {
            Some(s) => vec![s],
            None => self.list.iter().collect(),
        };
        let mut failure = SignatureError::NoKeys;
        for source in candidates {
            match verify(&source.keys, body, &signature) {
                Ok(key) => return Ok((source, key)),
                // A key of the right size that refused the signature says more than a
                // length mismatch with another source's key, so it is the one reported.
                Err(e) => {
                    if !matches!(failure, SignatureError::NotVerified) {
                        failure = e;
                    }
                }
            }
        }
        Err(failure)
    }
}
