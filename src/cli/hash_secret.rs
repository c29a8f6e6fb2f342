//! `biller-inbox hash-secret`: the SHA-256 digest of a secret read from stdin, for a credential
//! the server only checks (`"api-key" = { sha256 = "..." }`, `admin.token = { sha256 = "..." }`).
//! The secret never appears on the command line (where `ps` and shell history would keep it)
//! and is never printed.

use std::io::Read;

use super::Failure;

/// At most this much is read: a secret, not a file.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

pub fn run() -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if std::io::IsTerminal::is_terminal(&stdin) {
        eprintln!("biller-inbox: type the secret, then Enter and Ctrl-D (it is echoed by the terminal)");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::check(format!("cannot read the secret from stdin: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(Failure::usage(format!(
            "stdin holds more than {MAX_SECRET_BYTES} bytes: give the secret itself, not a file of secrets"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| Failure::usage("the secret on stdin is not UTF-8 text"))?;
    // The same trimming as a `{ file = ... }` secret: `echo secret | hash-secret` hashes `secret`.
    let secret = text.trim();
    if secret.is_empty() {
        return Err(Failure::usage(
            "no secret on stdin (usage: printf '%s' \"$SECRET\" | biller-inbox hash-secret)",
        ));
    }
    println!("{}", crate::secret::digest_hex(secret.as_bytes()));
    Ok(())
}
