//! `biller-inbox keygen --out DIR`: a fresh RSA-2048 test key pair for signing Empayre fixtures.

use std::path::Path;

use super::Failure;
use crate::empayre::signature::generate_test_key_pair;

pub const PRIVATE_FILE: &str = "empayre_test_private.pem";
pub const PUBLIC_FILE: &str = "empayre_test_public.pem";

pub fn run(out: &Path) -> Result<(), Failure> {
    // The directories this creates, innermost first: their parents get the new entries.
    let created: Vec<&Path> = out
        .ancestors()
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .collect();
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
    write_synced(&private_path, &private_pem, 0o600)?;
    write_synced(&public_path, &public_pem, 0o666)?;
    // "wrote" means on disk: the files are synced, and so are the directory entries naming them
    // and the directories created for them.
    let out_dir = if out.as_os_str().is_empty() {
        Path::new(".")
    } else {
        out
    };
    let mut dirs = vec![out_dir];
    dirs.extend(created.iter().map(|dir| match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }));
    for dir in dirs {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Failure::check(format!("cannot sync {}: {e}", dir.display())))?;
    }
    println!(
        "wrote {} (PKCS#8) and {} (SPKI)",
        private_path.display(),
        public_path.display()
    );
    Ok(())
}

/// Writes a new file (never over an existing one) with `mode` (the private key: its owner
/// only) and syncs it.
fn write_synced(path: &Path, pem: &str, mode: u32) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Failure::check(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::check(format!("cannot write {}: {e}", path.display())))
}
