//! Start-up through the real binary: the line that names what was read, relative paths in a
//! configuration file resolved against its folder, the CLI from another folder, unknown keys by
//! their full path, plain logs when stderr is not a terminal.

use std::path::Path;

use crate::helpers::*;

fn run_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("BILLER_INBOX_CONFIG")
        .output()
        .expect("binary runs")
}

#[tokio::test]
async fn a_config_file_works_from_any_folder_and_start_up_says_what_it_read() {
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("conf");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(conf.join("keys")).expect("mkdir");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(conf.join("accounts.json"), repo_file("fixtures/accounts.json")).expect("copy");
    std::fs::write(
        conf.join("keys/public.pem"),
        repo_file("fixtures/keys/empayre_test_public.pem"),
    )
    .expect("copy");
    // Every path relative, to be read from conf/ while the server runs in elsewhere/.
    std::fs::write(
        conf.join("site.toml"),
        r#"
[server]
port = 0
workers = 1
[store]
path = "../store"
cache_capacity_bytes = 16777216
[seed]
accounts_file = "accounts.json"
[[orbipay.clients]]
client_key = "site-client"
credentials = [ { "api-key" = "site-key" } ]
[[empayre.sources]]
name = "site"
public_key_files = ["keys/public.pem"]
"#,
    )
    .expect("write config");
    let log = dir.path().join("server.log");
    let mut command = tokio::process::Command::new(binary());
    // A relative --config: its folder is ../conf, seen from elsewhere/.
    command
        .args(["serve", "--config", "../conf/site.toml"])
        .env_remove("BILLER_INBOX_CONFIG");
    let mut server = start_command_in(command, &elsewhere, &log).await;
    let client = reqwest::Client::new();

    let r = client
        .post(format!("{}/mpacustomers", server.address))
        .header("client-key", "site-client")
        .header("api-key", "site-key")
        .form(&[("account_number", "ACC-100200")])
        .send()
        .await
        .expect("lookup sent");
    assert_eq!(r.status(), 200, "the seed accounts were read from conf/");
    let event = captured_event(77, "inv-startup", Some("ACC-100200"), 500);
    let (status, answer) = Remote::new(&server.address, "").send_event(&event).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("stored")),
        "the key file was read from conf/keys/: {answer}"
    );
    server.kill().await;

    assert!(dir.path().join("store").is_dir(), "the store is ../store from conf/");
    let written: Vec<_> = std::fs::read_dir(&elsewhere).expect("read dir").collect();
    assert!(
        written.is_empty(),
        "nothing is written in the working directory: {written:?}"
    );

    let logged = std::fs::read_to_string(&log).expect("log");
    let first = logged.lines().next().unwrap_or("");
    assert!(first.contains("configuration read"), "the first log line: {first}");
    assert!(first.contains("../conf/site.toml"), "{first}");
    assert!(
        first.contains(&format!("config/default.toml not found in {}", elsewhere.display())),
        "{first}"
    );
    assert!(!logged.contains('\u{1b}'), "ANSI codes in a log file:\n{logged}");
}

#[test]
fn offline_commands_name_the_configuration_they_read() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let config = write_config(dir.path(), &store, "[seed]\naccounts_file = \"\"\n");
    let config_arg = config.display().to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let out = run_in(
        root,
        &["accounts", "import", "fixtures/accounts.json", "--config", &config_arg],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    let location = match test_backend() {
        biller_inbox::settings::Backend::Sled => format!("the store at {}", store.display()),
        biller_inbox::settings::Backend::Postgres => "PostgreSQL at postgres@127.0.0.1:".to_string(),
    };
    assert!(
        err.contains(&format!("importing fixtures/accounts.json into {location}"))
            && err.contains(&format!("(configuration: config/default.toml, {config_arg})")),
        "{err}"
    );

    // From a folder without config/default.toml the line says so.
    let out = run_in(dir.path(), &["export", "--config", &config_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "configuration: {config_arg} (config/default.toml not found in {}",
            dir.path().display()
        )),
        "{err}"
    );
    // stdout is the export alone, and a store with accounts but no postings exports nothing.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn cli_defaults_name_the_missing_file_outside_the_repository() {
    let dir = tempfile::tempdir().expect("dir");
    let fixtures = repo_path("fixtures/empayre").display().to_string();
    let out = run_in(dir.path(), &["replay", &fixtures, "--target", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fixtures/keys/empayre_test_private.pem"), "{err}");
    assert!(err.contains("--sign-key"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_missing_key_file_is_named_with_the_path_it_resolved_to() {
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).expect("mkdir");
    let config = conf.join("x.toml");
    std::fs::write(
        &config,
        "[[empayre.sources]]\nname = \"x\"\npublic_key_files = [\"keys/missing.pem\"]\n",
    )
    .expect("write");
    let out = run_in(dir.path(), &["serve", "--config", &config.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empayre.sources[0].public_key_files[0]"), "{err}");
    assert!(
        err.contains(&conf.join("keys/missing.pem").display().to_string()),
        "{err}"
    );
}
