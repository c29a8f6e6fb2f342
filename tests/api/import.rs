//! `accounts import` through the real binary: both file forms read as streams, bad entries in
//! input order (the first 100 shown, all with --errors-out), nothing written when any entry is
//! bad, progress lines on stderr when it is not a terminal.

use std::path::Path;

use serde_json::json;

use crate::helpers::*;

fn import(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(binary())
        .args(["accounts", "import"])
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BILLER_INBOX_CONFIG")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn account(n: usize) -> serde_json::Value {
    json!({"account_number": format!("IMP-{n}"), "current_balance": "10.00",
           "customers": [{"customer_reference": format!("IC-{n}"), "email": format!("c{n}@example.com")}]})
}

/// The line or entry numbers of the bad-entry lines in `text`, in the order they appear.
fn reported(text: &str, file: &str, unit: &str) -> Vec<u64> {
    let prefix = format!("{file}: {unit} ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split(':').next().expect("number").parse().expect("a number"))
        .collect()
}

#[tokio::test]
async fn bad_entries_come_in_input_order_the_first_100_shown_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &dir.path().join("store"), "[seed]\naccounts_file = \"\"\n");
    // 300 lines: every third has a bad status, line 11 is not JSON, the last repeats line 1.
    let mut text = String::new();
    let mut want = Vec::new();
    for i in 1..=300usize {
        let line = if i == 11 {
            want.push(i as u64);
            "{not json".to_string()
        } else if i % 3 == 0 {
            want.push(i as u64);
            json!({"account_number": format!("IMP-{i}"), "status": "frozen"}).to_string()
        } else {
            account(i).to_string()
        };
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&account(1).to_string());
    want.push(301);
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, text).expect("write");
    let errors_out = dir.path().join("errors.txt");
    let file_arg = file.display().to_string();

    let (code, stdout, stderr) = import(&config, &[&file_arg, "--errors-out", &errors_out.display().to_string()]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    let shown = reported(&stderr, &file_arg, "line");
    assert_eq!(shown, want[..100], "the first 100, in input order");
    let total = want.len();
    assert!(
        stderr.contains(&format!(
            "nothing imported: {total} bad entries; the first 100 are listed above and {} more are not shown (all of them are in {})",
            total - 100,
            errors_out.display()
        )),
        "{stderr}"
    );
    let all = std::fs::read_to_string(&errors_out).expect("errors file");
    assert_eq!(
        reported(&all, &file_arg, "line"),
        want,
        "every bad entry, in input order"
    );
    assert!(all.contains("line 11: (line): not JSON"), "{all}");
    assert!(
        all.contains("line 301: account_number: IMP-1 appears twice in the file (first at line 1)"),
        "{all}"
    );

    // Without --errors-out the summary says how to get them all.
    let (code, _, stderr) = import(&config, &[&file_arg]);
    assert_eq!(code, 1);
    assert!(stderr.contains("(--errors-out FILE writes all of them)"), "{stderr}");

    // Nothing of the file reached the store, not even the good lines.
    let mut server = start_binary(&config, &dir.path().join("server.log")).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    let (status, _) = remote.admin_get("/admin/accounts/IMP-1").await;
    assert_eq!(status, 404, "a good entry of a bad file was imported");
    server.kill().await;
}

#[tokio::test]
async fn a_json_array_and_json_lines_import_the_same_accounts() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &dir.path().join("store"), "[seed]\naccounts_file = \"\"\n");
    let n = 5_000;
    // Accounts 1..=n as an array; then n+1..=2n as JSON lines, whose first half re-imports the
    // array's second half (updates) with a new name.
    let array: Vec<_> = (1..=n).map(account).collect();
    let array_file = dir.path().join("accounts.json");
    std::fs::write(&array_file, serde_json::to_string_pretty(&array).expect("json")).expect("write");
    let lines_file = dir.path().join("accounts.jsonl");
    let lines: Vec<String> = (n / 2 + 1..=n + n / 2)
        .map(|i| {
            let mut a = account(i);
            a["account_holder_name"] = json!("Renamed");
            a.to_string()
        })
        .collect();
    std::fs::write(&lines_file, lines.join("\n")).expect("write");

    let (code, stdout, stderr) = import(&config, &[&array_file.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "imported {n} accounts ({n} created, 0 updated), {n} profiles ({n} created, 0 updated)"
        )),
        "{stdout}"
    );
    let (code, stdout, stderr) = import(&config, &[&lines_file.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    let half = n / 2;
    assert!(
        stdout.starts_with(&format!(
            "imported {n} accounts ({half} created, {half} updated), {n} profiles ({half} created, {half} updated)"
        )),
        "{stdout}"
    );

    let mut server = start_binary(&config, &dir.path().join("server.log")).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    for (i, name) in [(1, None), (n, Some("Renamed")), (n + n / 2, Some("Renamed"))] {
        let (status, body) = remote.admin_get(&format!("/admin/accounts/IMP-{i}")).await;
        assert_eq!(status, 200, "IMP-{i}: {body}");
        assert_eq!(body["account"]["current_balance"], "10.00");
        assert_eq!(body["account"]["account_holder_name"].as_str(), name, "IMP-{i}");
    }
    server.kill().await;
}

#[test]
fn progress_lines_go_to_stderr_when_it_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &dir.path().join("store"), "[seed]\naccounts_file = \"\"\n");
    let file = dir.path().join("accounts.jsonl");
    let lines: Vec<String> = (1..=3_000).map(|i| account(i).to_string()).collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let (code, _, stderr) = import(&config, &[&file.display().to_string(), "--progress-every", "0"]);
    assert_eq!(code, 0, "{stderr}");
    let pattern = regex::Regex::new(
        r"^biller-inbox: (checking|importing): [0-9,]+ accounts, [0-9]+% of [0-9.]+ MB, [0-9,]+ accounts/s, about [0-9]+ s left$",
    )
    .expect("regex");
    for phase in ["checking", "importing"] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(&format!("biller-inbox: {phase}: ")))
            .collect();
        assert!(lines.len() >= 3, "{phase}: {stderr}");
        for line in &lines[..lines.len() - 1] {
            assert!(pattern.is_match(line), "{line}");
        }
        assert!(
            lines[lines.len() - 1].starts_with(&format!("biller-inbox: {phase}: done, 3,000 accounts in ")),
            "{stderr}"
        );
    }
    assert!(!stderr.contains('\u{1b}'), "no terminal codes off a terminal: {stderr}");
}
