//! `biller-inbox keygen --out DIR`: a fresh RSA-2048 test key pair for signing Empayre fixtures.

use std::path::Path;

use super::Failure;
use crate::empayre::signature::generate_test_key_pair;

pub const PRIVATE_FILE: &str = "empayre_test_private.pem";
pub const PUBLIC_FILE: &str = "empayre_test_public.pem";

pub fn run(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out).map_err(|e| Failure::check(format!("cannot create {}: {e}", out.display())))?;
    let private_path = out.join(PRIVATE_FILE);
    let public_path = out.join(PUBLIC_FILE);
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(Failure::check(format!(
                "{} exists; not overwriting a key",
                path.display()
            )));
        }
    }
    let (private_pem, public_pem) = generate_test_key_pair().map_err(|e| Failure::check(e.to_string()))?;
    write_private(&private_path, &private_pem)?;
    std::fs::write(&public_path, public_pem)
        .map_err(|e| Failure::check(format!("cannot write {}: {e}", public_path.display())))?;
    println!(
        "wrote {} (PKCS#8) and {} (SPKI)",
        private_path.display(),
        public_path.display()
    );
    Ok(())
}

/// The private key is readable by its owner only.
fn write_private(path: &Path, pem: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::check(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(pem.as_bytes())
        .map_err(|e| Failure::check(format!("cannot write {}: {e}", path.display())))
}
