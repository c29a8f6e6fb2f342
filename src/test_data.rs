//! Test data of the unit tests: files under the repository root, read by path relative to it.
//! A missing file panics naming the file, so a partial checkout says what is missing instead of
//! "No such file or directory".

use std::path::PathBuf;

/// The signature vector and example events (see `fixtures/vectors/empayre/README.md`).
pub const EMPAYRE_VECTORS: &str = "fixtures/vectors/empayre";

pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn read(relative: &str) -> Vec<u8> {
    let path = path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test data file {} cannot be read: {e}", path.display()))
}

pub fn read_text(relative: &str) -> String {
    let bytes = read(relative);
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("test data file {relative} is not UTF-8: {e}"))
}

/// A file of the Empayre vectors folder, e.g. `tv_body.json` or `examples/invoice_paid.json`.
pub fn empayre_vector(name: &str) -> Vec<u8> {
    read(&format!("{EMPAYRE_VECTORS}/{name}"))
}

pub fn empayre_vector_text(name: &str) -> String {
    read_text(&format!("{EMPAYRE_VECTORS}/{name}"))
}
