//! Credentials configured without plain text, through the real binary: `{ sha256 = "..." }`
//! digests (made by `biller-inbox hash-secret`) and `{ file = "..." }` secret files work; a
//! world-readable secret file stops start-up; and no secret, nor a wrong guess that contains
//! one, shows up in the server's log, `/metrics`, `/admin/rejections` or an error body.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::helpers::*;

const ADMIN_SECRET: &str = "adm-Secret-7f3a9c";
const FILE_KEY_SECRET: &str = "file-Key-51c2e8";
const HASH_KEY_SECRET: &str = "hash-Key-9d04b1";
const ALL_SECRETS: [&str; 3] = [ADMIN_SECRET, FILE_KEY_SECRET, HASH_KEY_SECRET];

/// Runs `biller-inbox hash-secret` with `stdin`: (exit code, stdout, stderr).
async fn hash_secret(stdin: &str) -> (i32, String, String) {
    let mut child = tokio::process::Command::new(binary())
        .arg("hash-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("write stdin");
    drop(input);
    let out = child.wait_with_output().await.expect("finished");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn digest_of(secret: &str) -> String {
    let (code, out, err) = hash_secret(&format!("{secret}\n")).await;
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

#[tokio::test]
async fn hash_secret_prints_the_sha256_of_stdin_trimmed() {
    // SHA-256("abc"), the FIPS 180-2 example: a trailing newline (`echo abc |`) is not hashed.
    for input in ["abc", "abc\n", "  abc\r\n"] {
        let (code, out, err) = hash_secret(input).await;
        assert_eq!(code, 0, "{input:?}: {err}");
        assert_eq!(
            out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
            "{input:?}"
        );
        assert!(!err.contains("abc"), "the secret is never printed: {err}");
    }
    let (code, out, err) = hash_secret(" \n").await;
    assert_eq!(code, 2, "empty stdin is bad usage: {out} {err}");
    assert!(err.contains("no secret on stdin"), "{err}");
}

/// A config over the demo one: admin token and one client's key as digests, another client's
/// key in a secret file (relative to the config's folder).
async fn secret_config(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("secrets")).expect("dir");
    write_secret_file(&dir.join("secrets/api-key"), &format!("{FILE_KEY_SECRET}\n"));
    let admin_digest = digest_of(ADMIN_SECRET).await;
    let key_digest = digest_of(HASH_KEY_SECRET).await;
    write_config(
        dir,
        &dir.join("store"),
        &format!(
            "[admin]\ntoken = {{ sha256 = \"{admin_digest}\" }}\n\
             [[orbipay.clients]]\nclient_key = \"filed\"\ncredentials = [ {{ \"api-key\" = {{ file = \"secrets/api-key\" }} }} ]\n\
             [[orbipay.clients]]\nclient_key = \"hashed\"\ncredentials = [ {{ \"api-key\" = {{ sha256 = \"{key_digest}\" }} }} ]\n"
        ),
    )
}

async fn post_payment(remote: &Remote, id: &str, client_key: &str, api_key: &str) -> (u16, String) {
    let r = remote
        .client
        .post(format!("{}/paymentposting", remote.address))
        .header("client-key", client_key)
        .header("api-key", api_key)
        .json(&payment(id, "ACC-100200", "1.00", "processed"))
        .send()
        .await
        .expect("sent");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in ALL_SECRETS {
        assert!(!text.contains(secret), "{what} shows a secret ({secret}):\n{text}");
    }
}

#[tokio::test]
async fn digests_and_secret_files_authenticate_and_no_secret_leaks() {
    let dir = tempfile::tempdir().expect("dir");
    let config = secret_config(dir.path()).await;
    let log_path = dir.path().join("server.log");
    let mut server = start_binary(&config, &log_path).await;
    let admin = Remote::new(&server.address, ADMIN_SECRET);

    let (status, body) = post_payment(&admin, "7001", "filed", FILE_KEY_SECRET).await;
    assert_eq!(status, 200, "the key from the secret file: {body}");
    let (status, body) = post_payment(&admin, "7002", "hashed", HASH_KEY_SECRET).await;
    assert_eq!(status, 200, "the key checked against its digest: {body}");
    let (status, body) = admin.admin_get("/admin/postings/payment/7002").await;
    assert_eq!(status, 200, "the admin token checked against its digest: {body}");

    // Wrong guesses that contain the secrets: whatever is echoed would show them.
    let mut bodies = Vec::new();
    for (client, key) in [
        ("filed", format!("{FILE_KEY_SECRET}x")),
        ("hashed", format!("x{HASH_KEY_SECRET}")),
        ("filed", HASH_KEY_SECRET.to_string()),
        ("hashed", String::new()),
    ] {
        let (status, body) = post_payment(&admin, "7003", client, &key).await;
        assert_eq!(status, 401, "{client} {key}: {body}");
        bodies.push(body);
    }
    let (status, body) = post_payment(&admin, "7004", "hashed", "").await;
    assert_eq!(status, 401, "an empty api-key never matches a digest: {body}");
    let digest_itself = digest_of(HASH_KEY_SECRET).await;
    let (status, body) = post_payment(&admin, "7005", "hashed", &digest_itself).await;
    assert_eq!(status, 401, "the digest is not the key: {body}");
    for token in [format!("{ADMIN_SECRET}-guess"), digest_of(ADMIN_SECRET).await] {
        let guess = Remote::new(&server.address, &token);
        let (status, body) = guess.admin_get("/admin/journal").await;
        assert_eq!(status, 401, "{body}");
        bodies.push(body.to_string());
    }
    for body in &bodies {
        assert_no_secret("an error body", body);
    }

    let metrics = fetch_metrics(&admin.client, &server.address).await;
    assert!(metrics.contains("biller_inbox_"), "{metrics}");
    assert_no_secret("/metrics", &metrics);
    let (status, rejections) = admin.admin_get("/admin/rejections?limit=1000").await;
    assert_eq!(status, 200, "{rejections}");
    assert!(
        rejections.to_string().contains("unauthorized"),
        "the refusals are logged: {rejections}"
    );
    assert_no_secret("/admin/rejections", &rejections.to_string());

    server.kill().await;
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log.contains("request done"),
        "the log has the requests (debug level): {log}"
    );
    assert_no_secret("the server log", &log);
    assert!(
        !contains(&all_bytes_under(&dir.path().join("store")), FILE_KEY_SECRET.as_bytes()),
        "a secret reached the store"
    );
}

#[tokio::test]
async fn a_world_readable_secret_file_stops_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let config = secret_config(dir.path()).await;
    let key_file = dir.path().join("secrets/api-key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = config.display().to_string();
    let (code, out, err) = run_binary(&["serve", "--config", &config]).await;
    assert_eq!(code, 2, "a configuration error: {out} {err}");
    assert!(
        err.contains(&key_file.display().to_string()) && err.contains("every user"),
        "the message names the file and why: {err}"
    );
    assert!(!out.contains("listening"), "{out}");
    assert_no_secret("the refusal", &format!("{out}{err}"));
}
