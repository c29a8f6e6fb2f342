//! The README's shell examples, run top to bottom against the demo server as the README starts
//! it, so they cannot drift from what the server does.
//!
//! The README's conventions, which this test reads:
//!
//! - Every ```` ```sh ```` (or ```` ```bash ````) block is an example against the demo server
//!   unless the line just before it is a marker:
//!   - `<!-- readme-test: not run: REASON -->`: not an example against the demo server
//!     (installs, builds, the test command itself, long benchmarks, calls to a real Empayre);
//!   - `<!-- readme-test: starts the demo server on a fresh store -->`: the block is the
//!     command that starts the server; the test stops the one it runs (if any) and starts the
//!     same command on a new empty store;
//!   - `<!-- readme-test: server stopped -->`: an example that needs the store of a stopped
//!     server (`accounts import`, `export`); the test stops the server first and, for the next
//!     example, starts it again on the same store.
//! - Every example is followed by an ```` ```output ```` block: what it prints (stdout and
//!   stderr, as a terminal shows them). `...` stands for any text (ids, times, what is left
//!   out); whitespace is ignored. An example without one fails the test, and so does an output
//!   block that follows no example.
//!
//! Each example runs alone in `bash -euo pipefail`, in a temporary folder that links the
//! repository's folders (so `fixtures/...` and `config/default.toml` are found as from the
//! repository root, and files an example writes land outside the work tree). The server is the
//! binary `cargo test` built, run as `cargo run --release` runs it (no arguments, the demo
//! configuration `config/default.toml`), with two environment variables: a temporary store and
//! port 0. `localhost:8080` and `127.0.0.1:8080`, the default address the examples assume, are
//! replaced by the address it printed; `cargo run --release -- ARGS` runs that binary with ARGS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::*;

const MARKER_NOT_RUN: &str = "not run:";
const MARKER_SERVER: &str = "starts the demo server on a fresh store";
const MARKER_STOPPED: &str = "server stopped";

#[derive(Debug, PartialEq)]
enum Role {
    /// Not an example against the demo server; the reason is in the README.
    NotRun,
    /// The command that starts the demo server.
    Server,
    /// An example against the running server.
    Example,
    /// An example that needs the server stopped.
    ExampleStopped,
}

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    role: Role,
    code: String,
    expected: Option<String>,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's shell blocks with their roles and expected outputs, in order. Panics naming the
/// line of a marker it does not know, an example without an output block, or an output block
/// that follows no example.
fn shell_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let info = info.trim();
        let start = i;
        let end = (start + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or_else(|| panic!("README.md:{}: a fenced block that never closes", start + 1));
        let body = lines[start + 1..end].join("\n");
        let marker = lines[..start]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- readme-test:"))
            .map(|m| m.trim_end_matches("-->").trim().to_string());
        match info {
            "sh" | "bash" => {
                let role = match marker.as_deref() {
                    None => Role::Example,
                    Some(MARKER_SERVER) => Role::Server,
                    Some(MARKER_STOPPED) => Role::ExampleStopped,
                    Some(m) if m.starts_with(MARKER_NOT_RUN) && m.len() > MARKER_NOT_RUN.len() + 3 => Role::NotRun,
                    Some(m) => panic!(
                        "README.md:{}: unknown marker `readme-test: {m}` (known: `{MARKER_NOT_RUN} REASON`, \
                         `{MARKER_SERVER}`, `{MARKER_STOPPED}`)",
                        start + 1
                    ),
                };
                blocks.push(Block {
                    line: start + 1,
                    role,
                    code: body,
                    expected: None,
                });
            }
            "output" => {
                let example = blocks
                    .last_mut()
                    .filter(|b| matches!(b.role, Role::Example | Role::ExampleStopped) && b.expected.is_none());
                match example {
                    Some(b) => b.expected = Some(body),
                    None => panic!(
                        "README.md:{}: an output block that follows no example (it would never be checked)",
                        start + 1
                    ),
                }
            }
            _ => {
                assert!(
                    marker.is_none(),
                    "README.md:{}: a readme-test marker on a block that is not sh",
                    start + 1
                );
            }
        }
        i = end + 1;
    }
    for b in &blocks {
        if matches!(b.role, Role::Example | Role::ExampleStopped) {
            assert!(
                b.expected.is_some(),
                "README.md:{}: this example has no ```output block after it, so nothing would check it \
                 (add what it prints, or mark it `<!-- readme-test: {MARKER_NOT_RUN} REASON -->`):\n{}",
                b.line,
                b.code
            );
        }
    }
    blocks
}

/// `expected` (with `...` for any text) against `actual`, whitespace ignored on both sides.
fn output_matches(expected: &str, actual: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let (expected, actual) = (squash(expected), squash(actual));
    let parts: Vec<&str> = expected.split("...").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if actual.len() < first.len() + last.len() || !actual.starts_with(first) || !actual.ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn output_matching_uses_dots_for_any_text_and_ignores_whitespace() {
    for (expected, actual, matched) in [
        (r#"{"status":"stored"}"#, r#"{"status":"stored"}"#, true),
        (r#"{"status":"stored"}"#, r#"{"status":"duplicate"}"#, false),
        (r#"{"a": 1, ...}"#, r#"{"a":1,"b":2}"#, true),
        (r#"{"a": 1, ...}"#, r#"{"b":2,"a":1}"#, false),
        (
            r#"...,"current_balance":"85.05",..."#,
            r#"{"x":1,"current_balance":"85.05","y":2}"#,
            true,
        ),
        (
            r#"...,"current_balance":"85.05",..."#,
            r#"{"x":1,"current_balance":"90.05","y":2}"#,
            false,
        ),
        ("...3 passed, 0 failed", "a ok\nb ok\n3 passed, 0 failed\n", true),
        ("...3 passed, 0 failed", "3 passed, 1 failed", false),
        ("a...b...c", "abc", true),
        ("a...b...c", "acb", false),
        ("ab...ba", "aba", false),
        ("", "", true),
        ("", "something", false),
    ] {
        assert_eq!(
            output_matches(expected, actual),
            matched,
            "{expected:?} against {actual:?}"
        );
    }
}

#[test]
fn an_example_without_an_output_block_or_a_stray_marker_fails_the_test() {
    let fence = "```";
    for (readme, complaint) in [
        (
            format!("{fence}sh\ncurl -s localhost:8080/health/live\n{fence}\n"),
            "has no ```output block",
        ),
        (
            format!("{fence}sh\ncurl a\n{fence}\n\n{fence}sh\ncurl b\n{fence}\n{fence}output\nb\n{fence}\n"),
            "README.md:1: this example has no ```output block",
        ),
        (
            format!("Text.\n\n{fence}output\nx\n{fence}\n"),
            "an output block that follows no example",
        ),
        (
            format!(
                "<!-- readme-test: not run: a build -->\n{fence}sh\ncargo build\n{fence}\n{fence}output\nx\n{fence}\n"
            ),
            "an output block that follows no example",
        ),
        (
            format!("<!-- readme-test: skip -->\n{fence}sh\ncurl a\n{fence}\n"),
            "unknown marker",
        ),
        (
            format!("<!-- readme-test: not run: -->\n{fence}sh\ncurl a\n{fence}\n"),
            "unknown marker",
        ),
    ] {
        let refused = std::panic::catch_unwind(|| shell_blocks(&readme)).expect_err(&readme);
        let message = refused
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| refused.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains(complaint), "{readme:?}: {message}");
    }
    let fine = format!(
        "<!-- readme-test: starts the demo server on a fresh store -->\n{fence}sh\ncargo run --release\n{fence}\n\n\
         {fence}sh\ncurl a\n{fence}\n\n{fence}output\nA\n{fence}\n{fence}json\n{{}}\n{fence}\n\
         <!-- readme-test: server stopped -->\n{fence}bash\nexport\n{fence}\n{fence}output\nB\n{fence}\n"
    );
    let blocks = shell_blocks(&fine);
    let roles: Vec<(&Role, Option<&str>)> = blocks.iter().map(|b| (&b.role, b.expected.as_deref())).collect();
    assert_eq!(
        roles,
        vec![
            (&Role::Server, None),
            (&Role::Example, Some("A")),
            (&Role::ExampleStopped, Some("B"))
        ]
    );
}

#[test]
fn the_readme_marks_every_shell_block() {
    let blocks = shell_blocks(&readme());
    // The README's first command starts the demo server; the examples need one.
    assert_eq!(
        blocks.first().map(|b| &b.role),
        Some(&Role::Server),
        "the README's first shell block is not the server's run command"
    );
    let examples = blocks
        .iter()
        .filter(|b| b.role != Role::NotRun && b.role != Role::Server)
        .count();
    assert!(
        examples >= 15,
        "only {examples} examples found in README.md: {blocks:#?}"
    );
}

/// The server as the README's run command starts it, on `store`.
async fn start_server(code: &str, line: usize, store: &Path, cwd: &Path, log: &Path) -> ServerProcess {
    let command: Vec<&str> = code
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    let args: &[&str] = match command.as_slice() {
        ["cargo run --release"] => &[],
        ["cargo run --release -- serve"] => &["serve"],
        other => panic!("README.md:{line}: a server block this test cannot start as written: {other:?}"),
    };
    let mut server = tokio::process::Command::new(binary());
    server
        .args(args)
        .env("BILLER_INBOX__STORE__PATH", store)
        .env("BILLER_INBOX__SERVER__PORT", "0")
        // Stopping between examples need not wait out the five-second drain.
        .env("BILLER_INBOX__SERVER__DRAIN_SECS", "0")
        .env_remove("BILLER_INBOX_CONFIG");
    start_command_in(server, cwd, log).await
}

/// Stops the server as a reader does (SIGTERM, like Ctrl-C) and waits for it to exit, so the
/// store is free.
async fn stop_server(mut server: ServerProcess, log: &Path) {
    let pid = server.child.id().expect("the server runs") as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM to the server");
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .unwrap_or_else(|_| panic!("the server did not stop within 30 s; its log:\n{}", log_text(log)))
        .expect("wait for the server");
    assert!(
        status.success(),
        "the server stopped with {status}; its log:\n{}",
        log_text(log)
    );
}

/// The last 40 lines of the server's log, for a failure message (the folder is gone after it).
fn log_text(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
        Err(e) => format!("({}: {e})", log.display()),
    }
}

/// A folder that links every top-level entry of the repository but `target` and `data`: the
/// examples' relative paths work as from the repository root, and what they write lands here.
fn work_folder(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cwd = dir.join("cwd");
    std::fs::create_dir(&cwd).expect("create the examples' folder");
    for entry in std::fs::read_dir(root).expect("read the repository root") {
        let entry = entry.expect("repository entry");
        let name = entry.file_name();
        if name == "target" || name == "data" || name == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), cwd.join(&name)).expect("link a repository entry");
    }
    cwd
}

/// What the examples run first: strict bash, stderr with stdout, and `cargo run --release`
/// meaning the binary this test built.
fn prelude() -> String {
    format!(
        r#"set -euo pipefail
exec 2>&1
cargo() {{
  if [ "$#" -ge 3 ] && [ "$1 $2 $3" = "run --release --" ]; then shift 3; "{bin}" "$@"
  else echo "README test: cannot run 'cargo $*' (only 'cargo run --release -- ARGS')"; return 127; fi
}}
"#,
        bin = binary()
    )
}

#[tokio::test]
async fn the_readme_examples_do_what_they_say_against_the_demo_server() {
    let blocks = shell_blocks(&readme());
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = work_folder(dir.path());
    let log = dir.path().join("server.log");
    let mut store_number = 0;
    let mut store = dir.path().join("store-0");
    let mut server: Option<ServerProcess> = None;
    let mut server_code: Option<(String, usize)> = None;
    let mut ran = 0;
    let mut failures: Vec<String> = Vec::new();

    for block in &blocks {
        match block.role {
            Role::NotRun => continue,
            Role::Server => {
                if let Some(s) = server.take() {
                    stop_server(s, &log).await;
                }
                store_number += 1;
                store = dir.path().join(format!("store-{store_number}"));
                server = Some(start_server(&block.code, block.line, &store, &cwd, &log).await);
                server_code = Some((block.code.clone(), block.line));
                continue;
            }
            Role::ExampleStopped => {
                if let Some(s) = server.take() {
                    stop_server(s, &log).await;
                }
            }
            Role::Example => {
                if server.is_none() {
                    let (code, line) = server_code
                        .as_ref()
                        .unwrap_or_else(|| panic!("README.md:{}: an example before the server is started", block.line));
                    server = Some(start_server(code, *line, &store, &cwd, &log).await);
                }
            }
        }
        let address = server
            .as_ref()
            .map(|s| s.address.trim_start_matches("http://").to_string())
            .unwrap_or_else(|| "127.0.0.1:1".to_string());
        let code = block
            .code
            .replace("localhost:8080", &address)
            .replace("127.0.0.1:8080", &address);
        let script = format!("{}{code}\n", prelude());
        let run = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&cwd)
            .env("BILLER_INBOX__STORE__PATH", &store)
            .env("BILLER_INBOX__SERVER__PORT", "0")
            .env_remove("BILLER_INBOX_CONFIG")
            .env_remove("RUST_LOG")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .unwrap_or_else(|_| panic!("README.md:{}: the example ran over 120 s:\n{code}", block.line))
            .expect("bash runs (install bash)");
        let printed = String::from_utf8_lossy(&out.stdout);
        // What a failure shows of a long answer (an OpenAPI document, the metrics).
        let shown: String = printed.chars().take(4000).collect();
        let expected = block.expected.as_deref().expect("checked by shell_blocks");
        if !out.status.success() || !output_matches(expected, &printed) {
            failures.push(format!(
                "README.md:{}: the example {}.\n--- example ---\n{code}\n--- expected ---\n{expected}\n--- printed ---\n{shown}",
                block.line,
                if out.status.success() {
                    "printed something else than its output block".to_string()
                } else {
                    format!("failed ({})", out.status)
                },
            ));
        }
        ran += 1;
    }
    if let Some(s) = server.take() {
        stop_server(s, &log).await;
    }
    // Every example runs, so one run shows every one that drifted (a later one may fail only
    // because an earlier one did).
    assert!(
        failures.is_empty(),
        "{} of {ran} README examples do not do what the README says:\n\n{}\n\n--- the server's log ---\n{}",
        failures.len(),
        failures.join("\n\n"),
        log_text(&log)
    );
    assert!(ran >= 15, "only {ran} README examples ran");
}
