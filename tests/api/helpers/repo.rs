//! Files of the repository, the test credentials, and searching bytes.

use std::path::{Path, PathBuf};

pub const CLIENT_KEY: &str = "demo-client";

pub const API_KEY: &str = "demo-api-key";

/// The admin token `test_settings` configures.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The admin token of `config/default.toml`, which every binary started with `write_config`
/// layers under the test's own file.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file of the repository the tests need (fixtures, keys, vectors), by path relative to the
/// root. A missing file panics naming it.
pub fn repo_file(rel: &str) -> Vec<u8> {
    let path = repo_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test data file {} cannot be read: {e}", path.display()))
}

pub fn repo_text(rel: &str) -> String {
    String::from_utf8(repo_file(rel)).unwrap_or_else(|e| panic!("test data file {rel} is not UTF-8: {e}"))
}

/// The signature vector and example events (see `fixtures/vectors/empayre/README.md`).
pub const EMPAYRE_VECTORS: &str = "fixtures/vectors/empayre";

/// Every file under `dir`, concatenated, for searching stored bytes.
pub fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.extend_from_slice(&bytes);
            }
        }
    }
    out
}

/// Everything the store of a config holds, for searching stored bytes: sled's files, or the
/// text of every row of every table of the PostgreSQL database it names.
pub fn stored_bytes(config: &Path, store: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(config).expect("config");
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("url = \"").and_then(|r| r.strip_suffix('"')));
    let Some(url) = url else {
        return all_bytes_under(store);
    };
    let db = crate::pg::TestDatabase {
        url: url.to_string(),
        name: String::new(),
    };
    let tables = crate::pg::sql(
        &db,
        &["SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"],
    )
    .expect("table names");
    let mut out = Vec::new();
    for table in tables {
        let rows = crate::pg::sql(&db, &[&format!("SELECT t::text FROM {} t", table[0])]).expect("rows");
        for row in rows {
            out.extend_from_slice(row[0].as_bytes());
            out.push(b'\n');
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `needle` occurs as a whole token: not inside a longer run of letters and digits.
/// A 4-digit CVV also occurs by chance inside ports, hex ids and digests in a debug log;
/// logged as a value it would stand alone (`"8123"`, `cvv=8123`, `cvv: 8123`).
pub fn contains_token(haystack: &[u8], needle: &[u8]) -> bool {
    let alnum = |i: Option<&u8>| i.is_some_and(|b| b.is_ascii_alphanumeric());
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .any(|(at, _)| {
            let before = at.checked_sub(1).and_then(|i| haystack.get(i));
            !alnum(before) && !alnum(haystack.get(at + needle.len()))
        })
}
