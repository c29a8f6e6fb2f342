//! The repository stands alone: nothing it tracks reads or names a path outside its own root.
//!
//! A user has only a clone of this repository. A test, bench or document that reaches for a
//! sibling folder works in the original checkout and breaks everywhere else, so every tracked
//! file (`git ls-files`) is scanned:
//!
//! - **Forbidden names**, anywhere in any file, text or binary: a parent folder called `shared`
//!   reached with `..`, and the absolute `/work` tree of the original machine.
//! - **Relative paths that climb out of the root**, in every text file (valid UTF-8, no NUL
//!   byte): each path-like token with a `..` segment and a `/` is resolved against the folder of
//!   the file it is written in (a Markdown link, a key in `config/*.toml`); a token that starts
//!   with `/` right after a quote, `)` or `}` (a suffix appended to `CARGO_MANIFEST_DIR`) is
//!   resolved against the repository root. A shell script's `$(dirname "$0")` is its own
//!   folder. A token that goes above the root fails the test.
//!
//! Binary files (fuzz inputs that are not UTF-8, for example) get the byte search for the
//! forbidden names but not the path resolution, which needs text; today every tracked file is
//! text, and the test lists how many were binary so a change there is visible.

use std::path::Path;
use std::process::Command;

/// The names no tracked file may contain, built so this file does not contain them itself.
fn forbidden_names() -> Vec<String> {
    vec![format!("{}/{}", "..", "shared"), format!("/{}/", "work")]
}

struct Finding {
    file: String,
    line: usize,
    what: String,
}

/// Path-like tokens: runs of characters that can make up a path.
fn path_tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_.-~/".contains(c);
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (is_path_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out.into_iter()
}

/// How many folders deep `file` sits below the root (`README.md` 0, `docs/x.md` 1).
fn folder_depth(file: &str) -> i64 {
    file.matches('/').count() as i64
}

/// Whether `token`, written at byte `at` of `line` in `file`, leads above the repository root.
fn climbs_out(file: &str, line: &str, at: usize, token: &str) -> bool {
    if !token.contains('/') || !token.split('/').any(|segment| segment == "..") {
        return false;
    }
    let before = line[..at].chars().next_back();
    let mut depth = if token.starts_with('/') {
        match before {
            // Appended to a base the code computes: the manifest dir or a command's output.
            Some('"') | Some('\'') | Some(')') | Some('}') => 0,
            // An absolute path: `..` at `/` stays at `/`, which is outside anyway.
            _ => return token.split('/').any(|s| s == ".."),
        }
    } else {
        folder_depth(file)
    };
    for segment in token.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn scan_text(file: &str, text: &str, findings: &mut Vec<Finding>) {
    for (n, raw) in text.lines().enumerate() {
        // In a script, `$(dirname "$0")` is the script's own folder.
        let line = raw
            .replace("$(dirname \"$0\")", ".")
            .replace("$(dirname \"${BASH_SOURCE[0]}\")", ".");
        for (at, token) in path_tokens(&line) {
            if climbs_out(file, &line, at, token) {
                findings.push(Finding {
                    file: file.to_string(),
                    line: n + 1,
                    what: format!("`{token}` leads above the repository root"),
                });
            }
        }
    }
}

fn tracked_files(root: &Path) -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `git ls-files` in {} (install git): {e}", root.display()));
    assert!(
        out.status.success(),
        "`git ls-files` failed in {}: this test needs a git checkout of the repository: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn no_tracked_file_reads_or_names_a_path_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = tracked_files(root);
    assert!(files.len() > 100, "git ls-files listed only {} files", files.len());
    let forbidden = forbidden_names();
    let mut findings = Vec::new();
    let mut binary = 0;
    for file in &files {
        let path = root.join(file);
        // A tracked file deleted in the work tree is the author's business, not this test's.
        let Ok(bytes) = std::fs::read(&path) else { continue };
        for name in &forbidden {
            if let Some(at) = bytes.windows(name.len()).position(|w| w == name.as_bytes()) {
                let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                findings.push(Finding {
                    file: file.clone(),
                    line,
                    what: format!("names `{name}`"),
                });
            }
        }
        match std::str::from_utf8(&bytes) {
            Ok(text) if !text.contains('\0') => scan_text(file, text, &mut findings),
            _ => binary += 1,
        }
    }
    let report: Vec<String> = findings
        .iter()
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.what))
        .collect();
    assert!(
        report.is_empty(),
        "tracked files refer to paths outside the repository (copy what is needed into it):\n{}",
        report.join("\n")
    );
    // Binary files only had the byte search; keep their number visible.
    assert!(
        binary * 10 < files.len(),
        "{binary} of {} tracked files are binary",
        files.len()
    );
}

#[test]
fn the_scan_catches_what_it_is_meant_to_catch() {
    // `^` stands for `..`, so that this file does not contain the paths it tests.
    let cases: &[(&str, &str, bool)] = &[
        ("README.md", "see `^/spec/x.md`", true),
        ("docs/a.md", "see [x](^/README.md)", false),
        ("docs/a.md", "see [x](^/^/other/README.md)", true),
        (
            "config/default.toml",
            "accounts_file = \"^/fixtures/accounts.json\"",
            false,
        ),
        (
            "config/default.toml",
            "accounts_file = \"^/^/fixtures/accounts.json\"",
            true,
        ),
        (
            "src/a/b.rs",
            "concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/^/vectors\")",
            true,
        ),
        (
            "src/a/b.rs",
            "concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/fixtures/x\")",
            false,
        ),
        ("src/a/b.rs", "format!(\"{DIR}/^/x\")", true),
        ("src/a/b.rs", "let r = 0..n; let s = S { ..d };", false),
        ("scripts/test.sh", "cd \"$(dirname \"$0\")/^\"", false),
        ("scripts/test.sh", "cd \"$(dirname \"$0\")/^/^\"", true),
        ("fuzz/Cargo.toml", "path = \"^\"", false),
        ("a.md", "fixtures/x/^/^/^/y", true),
    ];
    for (file, line, want) in cases {
        let line = line.replace('^', "..");
        let mut findings = Vec::new();
        scan_text(file, &line, &mut findings);
        assert_eq!(!findings.is_empty(), *want, "{file}: {line}");
    }
}
