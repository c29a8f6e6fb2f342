//! The documentation in `docs/` keeps up with the code. Each test reads a list from the code or
//! the running server and fails naming what `docs/` does not mention:
//!
//! - every route of `/openapi.json`, as `` `METHOD /path` ``;
//! - every error code the code can return: the EBPP codes (`error_*` literals in `src/`), the
//!   admin API's codes (the `AdminError` constructors in `src/`) and the Empayre answers (the
//!   messages of `EmpayreError`), each in a table row that gives its cause;
//! - every configuration key, found by asking `Settings`' own deserializer which keys each
//!   section takes;
//! - every command of `biller-inbox --help`, and every metric of `/metrics`.
//!
//! And no document, README, `--help` text or `/openapi.json` names a file the repository does not
//! have: a Markdown link must lead to a file, and a `*.md` name anywhere in them must be a file of
//! the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use biller_inbox::settings::Settings;
use regex::Regex;
use serde_json::{json, Value};

use crate::helpers::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `docs/*.md` with its text.
fn docs() -> Vec<(String, String)> {
    let dir = root().join("docs");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (format!("docs/{}", p.file_name().expect("name").to_string_lossy()), text)
        })
        .collect();
    out.sort();
    out
}

fn all_docs() -> String {
    docs().into_iter().map(|(_, text)| text).collect::<Vec<_>>().join("\n")
}

/// Files of the repository (`git ls-files`), and the Rust sources among them.
fn tracked() -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git ls-files runs (install git)");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn sources_under(folder: &str) -> Vec<(String, String)> {
    tracked()
        .into_iter()
        .filter(|f| f.starts_with(folder) && f.ends_with(".rs"))
        .filter_map(|f| std::fs::read_to_string(root().join(&f)).ok().map(|t| (f, t)))
        .collect()
}

#[tokio::test]
async fn every_route_of_the_openapi_document_is_documented() {
    let app = spawn_app().await;
    let document = openapi_document(&app).await;
    let docs = all_docs();
    let routes: Vec<String> = documented_operations(&document)
        .into_iter()
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(routes.len() >= 20, "the OpenAPI document lists only {routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|route| !docs.contains(&format!("`{route}`")) && !docs.contains(&format!("`{route}?")))
        .collect();
    assert!(
        missing.is_empty(),
        "routes of /openapi.json that docs/ does not mention (as `METHOD /path`): {missing:?}"
    );
}

/// Whether `code` appears in backticks in a Markdown table row of `docs` whose other cells are
/// not empty: a code with its cause.
fn documented_with_cause(docs: &str, code: &str) -> bool {
    let quoted = format!("`{code}`");
    docs.lines().any(|line| {
        let line = line.trim();
        line.starts_with('|') && line.contains(&quoted) && {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            cells.len() >= 3 && cells.iter().all(|c| !c.is_empty())
        }
    })
}

#[test]
fn every_error_code_is_documented_with_its_cause() {
    let docs = all_docs();
    let sources = sources_under("src/");

    // EBPP: the wire codes all start with `error_`.
    let ebpp_pattern = Regex::new(r#""(error_[a-z_]+)""#).expect("regex");
    let ebpp: BTreeSet<String> = sources
        .iter()
        .flat_map(|(_, text)| ebpp_pattern.captures_iter(text).map(|c| c[1].to_string()))
        .collect();
    for code in [
        "error_field",
        "error_unauthorized",
        "error_duplicate_posting",
        "error_processing",
    ] {
        assert!(ebpp.contains(code), "the scan for EBPP codes missed {code}: {ebpp:?}");
    }

    // Admin: every wire name of `AdminErrorCode` (the closed set the document lists).
    let (_, admin_errors) = sources
        .iter()
        .find(|(f, _)| f == "src/admin/error.rs")
        .expect("src/admin/error.rs");
    let admin_pattern = Regex::new(r#"Self::[A-Za-z]+ => "([a-z_]+)","#).expect("regex");
    let admin: BTreeSet<String> = admin_pattern
        .captures_iter(admin_errors)
        .map(|c| c[1].to_string())
        .collect();
    for code in [
        "unauthorized",
        "admin_disabled",
        "malformed",
        "validation",
        "window_required",
        "store_unavailable",
    ] {
        assert!(
            admin.contains(code),
            "the scan for admin codes missed {code}: {admin:?}"
        );
    }

    // Empayre answers errors with a message per variant of EmpayreError.
    let (_, handlers) = sources
        .iter()
        .find(|(f, _)| f == "src/empayre/handlers.rs")
        .expect("src/empayre/handlers.rs");
    let message_pattern = Regex::new(r#"Self::[A-Za-z]+(?:\([^)]*\))? => f\.write_str\("([^"]+)"\)"#).expect("regex");
    let empayre: BTreeSet<String> = message_pattern
        .captures_iter(handlers)
        .map(|c| c[1].to_string())
        .collect();
    assert!(
        empayre.len() >= 5,
        "the scan for Empayre answers found only {empayre:?}"
    );

    let mut missing = Vec::new();
    for code in ebpp.iter().chain(&admin) {
        if !documented_with_cause(&docs, code) {
            missing.push(code.clone());
        }
    }
    for message in &empayre {
        if !documented_with_cause(&docs, &format!("{{\"message\": \"{message}\"}}")) {
            missing.push(format!("Empayre {message:?}"));
        }
    }
    assert!(
        missing.is_empty(),
        "error codes the code can return without a table row in docs/ giving their cause: {missing:?}"
    );
}

/// The keys a section of `Settings` takes, read from the deserializer's own "unknown field"
/// message; None when `value` at that place is not a table.
fn keys_of(probe: Value) -> Option<Vec<String>> {
    let error = serde_json::from_value::<Settings>(probe).err()?.to_string();
    let rest = error.strip_prefix("unknown field `zz_probe`")?;
    let fields = rest
        .strip_prefix(", expected one of ")
        .or_else(|| rest.strip_prefix(", expected "))
        .unwrap_or("");
    // Two fields read "expected `a` or `b`"; more read "expected one of `a`, `b`, `c`".
    Some(
        fields
            .replace("` or `", "`, `")
            .split(", ")
            .map(|f| f.trim_matches('`').to_string())
            .filter(|f| !f.is_empty())
            .collect(),
    )
}

/// `value` with `inner` put at `path` (segments; `[]` means "the one element of an array").
fn nest(path: &[String], inner: Value) -> Value {
    match path.split_first() {
        None => inner,
        Some((first, rest)) => match first.strip_suffix("[]") {
            Some(name) => json!({ name: [nest(rest, inner)] }),
            None => json!({ first.as_str(): nest(rest, inner) }),
        },
    }
}

/// Every leaf key of `Settings`, as `section.key` or `section.list[].key`.
fn configuration_keys() -> Vec<String> {
    let mut leaves = Vec::new();
    let mut pending: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = pending.pop() {
        let fields = keys_of(nest(&path, json!({"zz_probe": 1})))
            .unwrap_or_else(|| panic!("{path:?} is not a table of Settings"));
        for field in fields {
            let mut table = path.clone();
            table.push(field.clone());
            if keys_of(nest(&table, json!({"zz_probe": 1}))).is_some() {
                pending.push(table);
                continue;
            }
            let mut list = path.clone();
            list.push(format!("{field}[]"));
            if keys_of(nest(&list, json!({"zz_probe": 1}))).is_some() {
                pending.push(list);
                continue;
            }
            leaves.push(table.join("."));
        }
    }
    leaves.sort();
    leaves
}

#[test]
fn every_configuration_key_is_documented() {
    let keys = configuration_keys();
    for key in [
        "server.port",
        "store.path",
        "orbipay.clients[].client_key",
        "empayre.sources[].name",
    ] {
        assert!(keys.contains(&key.to_string()), "the key walk missed {key}: {keys:?}");
    }
    let operations = std::fs::read_to_string(root().join("docs/operations.md")).expect("docs/operations.md");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !operations.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "configuration keys that docs/operations.md does not list (as `section.key`): {missing:?}"
    );
}

/// `biller-inbox ARGS --help`.
fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(binary())
        .args(args)
        .arg("--help")
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The commands listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path and its help text.
fn commands() -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut pending = vec![Vec::<String>::new()];
    while let Some(path) = pending.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
        out.push((path, text));
    }
    out
}

#[test]
fn every_command_is_documented() {
    let operations = std::fs::read_to_string(root().join("docs/operations.md")).expect("docs/operations.md");
    let all = commands();
    let leaves: Vec<String> = all
        .iter()
        .filter(|(_, text)| subcommands(text).is_empty())
        .map(|(path, _)| format!("biller-inbox {}", path.join(" ")))
        .collect();
    assert!(leaves.len() >= 6, "{leaves:?}");
    let missing: Vec<&String> = leaves
        .iter()
        .filter(|c| !operations.contains(&format!("`{c}`")) && !operations.contains(&format!("`{c} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "commands docs/operations.md does not describe: {missing:?}"
    );
}

#[tokio::test]
async fn every_metric_is_documented() {
    let app = spawn_app().await;
    // One of each kind of traffic, so that every family has a sample.
    app.post("/paymentposting", &payment("4242", "ACC-100200", "1.00", "processed"))
        .await;
    app.post("/paymentposting", &payment("4242", "ACC-100200", "1.00", "processed"))
        .await;
    app.lookup(&[("account_number", "NOPE")]).await;
    let text = app.metrics_text().await;
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ").or_else(|| (!l.starts_with('#')).then_some(l)))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| n.starts_with("biller_inbox_"))
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_string()
        })
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    let docs = all_docs();
    let missing: Vec<&String> = names.iter().filter(|n| !docs.contains(&format!("`{n}"))).collect();
    assert!(
        missing.is_empty(),
        "metrics of /metrics that docs/ does not list: {missing:?}"
    );
}

/// Markdown link targets of `text` that are files (no scheme, not only an anchor).
fn link_targets(text: &str) -> Vec<String> {
    let pattern = Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    pattern
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .filter(|t| !t.contains("://") && !t.starts_with('#') && !t.starts_with("mailto:"))
        .map(|t| t.split('#').next().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn no_document_or_help_text_names_a_file_the_repository_does_not_have() {
    let files = tracked();
    let names: BTreeSet<&str> = files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap_or(f.as_str()))
        .collect();
    let md_name = Regex::new(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b").expect("regex");
    let mut problems = Vec::new();
    let check_md_names = |origin: &str, text: &str| -> Vec<String> {
        md_name
            .find_iter(text)
            .map(|m| m.as_str())
            .filter(|name| !names.contains(name.rsplit('/').next().unwrap_or(name)))
            .map(|name| format!("{origin}: names {name}, which the repository does not have"))
            .collect()
    };

    // The README, every page of docs/ and their links.
    let mut pages = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(root().join("README.md")).expect("README"),
    )];
    pages.extend(docs());
    for (page, text) in &pages {
        problems.extend(check_md_names(page, text));
        let folder = Path::new(page).parent().unwrap_or(Path::new(""));
        for target in link_targets(text) {
            let path: PathBuf = root().join(folder).join(&target);
            if !target.is_empty() && !path.exists() {
                problems.push(format!("{page}: links to {target}, which does not exist"));
            }
        }
    }
    // Every help text.
    for (path, text) in commands() {
        problems.extend(check_md_names(
            &format!("biller-inbox {} --help", path.join(" ")),
            &text,
        ));
    }
    // The OpenAPI document's descriptions.
    let app = spawn_app().await;
    let document = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    problems.extend(check_md_names("/openapi.json", &document));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
