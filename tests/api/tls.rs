//! HTTPS through real TLS connections: protocol versions, HTTP/2, a certificate renewed on disk,
//! a broken renewal refused, client certificates for Orbipay clients, and start-up errors. (The
//! whole Orbipay conformance suite also runs over TLS: `orbipay_*::tls`.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use biller_inbox::settings::TlsSettings;
use biller_inbox::startup::Application;
use biller_inbox::tls::{Reload, TlsSubject};
use serde_json::Value;

use crate::helpers::*;
use crate::test_ca::{Pair, TestCa};

/// The certificate a fresh connection is served, as DER.
async fn served_certificate(ca: &TestCa, address: &str) -> Vec<u8> {
    let client = ca.client(None).build().expect("client");
    let r = client
        .get(format!("{address}/health/live"))
        .send()
        .await
        .expect("TLS request");
    assert_eq!(r.status(), 200);
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the server presented a certificate")
        .to_vec()
}

/// A minimal ClientHello record offering `version` (0x0302 = TLS 1.1, 0x0303 = TLS 1.2) with
/// everything else a TLS 1.2 server needs: ECDHE suites for ECDSA and RSA keys, groups, point
/// formats and signature algorithms. The two versions differ in that one field only.
fn client_hello(version: u16) -> Vec<u8> {
    fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend(kind.to_be_bytes());
        out.extend((data.len() as u16).to_be_bytes());
        out.extend(data);
    }
    let mut body = Vec::new();
    body.extend(version.to_be_bytes());
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc009, 0xc013];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        body.extend(suite.to_be_bytes());
    }
    body.extend([1, 0]); // compression: null only
    let mut extensions = Vec::new();
    extension(&mut extensions, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // x25519, secp256r1
    extension(&mut extensions, 0x000b, &[1, 0]); // uncompressed points
    extension(&mut extensions, 0x000d, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]); // sig algs
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![1]; // client_hello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// Sends a ClientHello and returns the first record's content type and its first bytes.
async fn first_answer(port: u16, hello: &[u8]) -> (u8, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(hello).await.expect("hello sent");
    let mut header = [0u8; 5];
    stream
        .read_exact(&mut header)
        .await
        .expect("the server answers the hello");
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut payload = vec![0u8; len.min(64)];
    stream.read_exact(&mut payload).await.expect("record payload");
    (header[0], payload)
}

/// `openssl s_client` against the server, offering only `version` (`-tls1_1`, `-tls1_2`, ...).
/// Security level 0 lets OpenSSL 3 offer the old protocols at all, so a refusal comes from the
/// server, not from the client's own policy. Returns (exit status, stdout + stderr).
async fn s_client(port: u16, version: &str, ca_file: &Path) -> (i32, String) {
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), version])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile"])
        .arg(ca_file)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl runs (scripts/test.sh installs the openssl package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_are_spoken() {
    let app = spawn_app_over(Transport::Tls, |_| {}).await;
    let port = port_of(&app.address);

    // Two hellos that differ only in the version offered: TLS 1.2 gets a ServerHello for 1.2,
    // TLS 1.1 (and 1.0) a fatal protocol_version alert.
    let (kind, payload) = first_answer(port, &client_hello(0x0303)).await;
    assert_eq!(
        (kind, payload[0]),
        (0x16, 2),
        "TLS 1.2: a handshake record holding a ServerHello"
    );
    assert_eq!(&payload[4..6], &[0x03, 0x03], "the ServerHello picks TLS 1.2");
    for old in [0x0302u16, 0x0301] {
        let (kind, payload) = first_answer(port, &client_hello(old)).await;
        assert_eq!(
            (kind, payload.as_slice()),
            (0x15, &[2u8, 70][..]),
            "{old:#06x}: an alert record, fatal, protocol_version"
        );
    }

    // An independent TLS stack (OpenSSL) offering one version at a time: 1.0 and 1.1 end in an
    // alert from the server (the session line shows what the client offered), 1.2 and 1.3
    // complete with the certificate verified.
    let ca_file = app.store_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &test_ca().cert_pem).expect("write CA");
    for (flag, offered) in [("-tls1_1", "TLSv1.1"), ("-tls1", "TLSv1")] {
        let (code, text) = s_client(port, flag, &ca_file).await;
        assert_ne!(code, 0, "{flag} must be refused:\n{text}");
        assert!(
            text.contains(&format!("Protocol  : {offered}\n")) && text.contains("SSL alert number"),
            "{flag}: OpenSSL offered {offered} and the server refused it with an alert:\n{text}"
        );
    }
    for (flag, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (code, text) = s_client(port, flag, &ca_file).await;
        assert_eq!(code, 0, "{flag} must be served:\n{text}");
        // The summary s_client prints once the handshake is done (the session block after it
        // may be cut short when stdin closes first).
        assert!(text.contains(&format!("New, {name}, Cipher is")), "{flag}:\n{text}");
        assert!(
            text.contains("Verification: OK") && text.contains(TEST_SERVER_CN),
            "{flag}: the server's certificate, verified against the test CA:\n{text}"
        );
    }

    // And reqwest's rustls, pinned to each version, gets answers.
    for version in [reqwest::tls::Version::TLS_1_2, reqwest::tls::Version::TLS_1_3] {
        let client = test_ca()
            .client(None)
            .min_tls_version(version)
            .max_tls_version(version)
            .build()
            .expect("client");
        let r = client
            .get(format!("{}/health/live", app.address))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200, "{version:?}");
    }
}

#[tokio::test]
async fn http_2_and_http_1_1_are_negotiated() {
    let app = spawn_app_over(Transport::Tls, |_| {}).await;
    for (client, want) in [
        (test_ca().client(None).build(), reqwest::Version::HTTP_2),
        (test_ca().client(None).http1_only().build(), reqwest::Version::HTTP_11),
    ] {
        let client = client.expect("client");
        let r = client
            .post(format!("{}/paymentposting", app.address))
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .json(&payment(
                if want == reqwest::Version::HTTP_2 {
                    "9002"
                } else {
                    "9001"
                },
                "ACC-100200",
                "1.00",
                "processed",
            ))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.version(), want);
        assert_eq!(r.status(), 200, "{want:?}");
        let r = client
            .post(format!("{}/paymentposting", app.address))
            .header("client-key", CLIENT_KEY)
            .header("api-key", "wrong")
            .json(&payment("9003", "ACC-100200", "1.00", "processed"))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 401, "{want:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(first_error(&body).0, "error_unauthorized");
    }
}

/// Waits up to `within` for fresh connections to be served `want`.
async fn wait_until_served(ca: &TestCa, address: &str, want: &[u8], within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if served_certificate(ca, address).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_certificate_swapped_on_disk_is_served_to_the_next_connection() {
    let app = spawn_app_over(Transport::Tls, |_| {}).await;
    let ca = test_ca();
    let tls_dir = app.store_dir.path().join("tls");
    let first = served_certificate(ca, &app.address).await;

    // A keep-alive connection opened before the renewal goes on working.
    let kept = ca.client(None).http1_only().build().expect("client");
    let before = kept
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(before.status(), 200);

    // Renewed in place, the way a renewal tool does it (new file renamed over the old).
    let renewed = ca.server_pair("renewed certificate");
    renewed.write(&tls_dir);
    assert!(
        wait_until_served(ca, &app.address, &renewed.cert_der(), Duration::from_secs(10)).await,
        "the renewed certificate was not served within 10 s (the server checks every second)"
    );
    assert_ne!(first, renewed.cert_der());
    let after = kept
        .get(format!("{}/health/live", app.address))
        .send()
        .await
        .expect("the connection from before the renewal still serves");
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_broken_certificate_change_is_refused_and_the_old_one_stays() {
    let app = spawn_app_over(Transport::Tls, |_| {}).await;
    let ca = test_ca();
    let reloader = app.tls.clone().expect("TLS app has a reloader");
    let tls_dir = app.store_dir.path().join("tls");
    let serving = served_certificate(ca, &app.address).await;
    let other = ca.server_pair("other");
    let good = ca.server_pair("good again");
    let (cert_path, key_path) = (tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
    let original_key = std::fs::read_to_string(&key_path).expect("key");

    let broken: Vec<(&str, Box<dyn Fn()>)> = vec![
        (
            "garbage certificate",
            Box::new(|| crate::test_ca::write_private(&cert_path, "not a certificate\n")),
        ),
        (
            "certificate file emptied",
            Box::new(|| crate::test_ca::write_private(&cert_path, "")),
        ),
        (
            "new certificate, old key (key written last, not yet)",
            Box::new(|| {
                crate::test_ca::write_private(&cert_path, &other.cert_pem);
                crate::test_ca::write_private(&key_path, &original_key);
            }),
        ),
        (
            "key truncated",
            Box::new(|| {
                crate::test_ca::write_private(&cert_path, &other.cert_pem);
                crate::test_ca::write_private(&key_path, &other.key_pem[..other.key_pem.len() / 2]);
            }),
        ),
        (
            "certificate file removed",
            Box::new(|| std::fs::remove_file(&cert_path).expect("remove")),
        ),
    ];
    for (name, break_it) in &broken {
        break_it();
        match reloader.check(true) {
            Reload::Refused(message) => {
                assert!(
                    message.contains("server.tls."),
                    "{name}: the refusal names the key: {message}"
                );
            }
            other => panic!("{name}: a broken pair must be refused, got {other:?}"),
        }
        assert_eq!(
            served_certificate(ca, &app.address).await,
            serving,
            "{name}: the previous certificate is still served"
        );
    }
    // Once the pair is whole again, it is taken.
    good.write(&tls_dir);
    assert!(matches!(reloader.check(true), Reload::Loaded(_)));
    assert_eq!(served_certificate(ca, &app.address).await, good.cert_der());
    assert_eq!(reloader.check(false), Reload::Unchanged);
}

#[tokio::test]
async fn an_orbipay_client_naming_a_certificate_needs_it() {
    let ca = test_ca();
    let ca_dir = tempfile::tempdir().expect("dir");
    let ca_file = ca_dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).expect("write CA");
    let client_ca = ca_file.clone();
    let app = spawn_app_over(Transport::Tls, move |s| {
        s.empayre.sources = vec![fixture_empayre_source("demo")];
        if let Some(tls) = s.server.tls.as_mut() {
            tls.client_ca_file = client_ca;
        }
        s.orbipay.clients[0].tls_subject = Some(TlsSubject::parse("CN=ebpp-client").expect("subject"));
    })
    .await;
    let right = ca.client_pair("ebpp-client");
    let wrong = ca.client_pair("someone-else");
    let stranger_ca = TestCa::new("another CA");
    let foreign = stranger_ca.client_pair("ebpp-client");

    let lookup = |identity: Option<&Pair>| {
        let client = ca.client(identity).build().expect("client");
        let url = format!("{}/mpacustomers", app.address);
        async move {
            client
                .post(url)
                .header("client-key", CLIENT_KEY)
                .header("api-key", API_KEY)
                .form(&[("account_number", "ACC-100200")])
                .send()
                .await
        }
    };
    let r = lookup(Some(&right)).await.expect("sent");
    assert_eq!(r.status(), 200, "the named certificate with the right key");
    for (name, identity) in [("no certificate", None), ("another subject", Some(&wrong))] {
        let r = lookup(identity).await.expect("sent");
        assert_eq!(r.status(), 401, "{name}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(first_error(&body).0, "error_unauthorized", "{name}");
    }
    // A certificate from a CA the server does not trust does not get through the handshake.
    assert!(
        lookup(Some(&foreign)).await.is_err(),
        "a foreign CA's certificate is refused"
    );

    // The right certificate does not stand in for the API key.
    let client = ca.client(Some(&right)).build().expect("client");
    let r = client
        .post(format!("{}/mpacustomers", app.address))
        .header("client-key", CLIENT_KEY)
        .header("api-key", "wrong")
        .form(&[("account_number", "ACC-100200")])
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);

    // The server asks but does not require: Empayre's sender (no certificate) gets through.
    let signed = Remote {
        client: ca.client(None).build().expect("client"),
        address: app.address.clone(),
        admin_token: ADMIN_TOKEN.into(),
    };
    let (status, body) = signed
        .send_event(&captured_event(1, "inv-tls", Some("ACC-100200"), 500))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("stored")));
}

#[tokio::test]
async fn start_up_refuses_bad_tls_files_naming_the_key() {
    let ca = test_ca();
    let dir = tempfile::tempdir().expect("dir");
    let good = ca.server_pair("good");
    let other = ca.server_pair("other");
    let (cert, key) = good.write(&dir.path().join("good"));
    let (_, other_key) = other.write(&dir.path().join("other"));
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "junk").expect("write");
    let missing = dir.path().join("missing.pem");
    let cases: Vec<(&str, PathBuf, PathBuf, PathBuf, &str)> = vec![
        (
            "missing certificate",
            missing.clone(),
            key.clone(),
            PathBuf::new(),
            "server.tls.cert_file",
        ),
        (
            "junk certificate",
            junk.clone(),
            key.clone(),
            PathBuf::new(),
            "server.tls.cert_file",
        ),
        (
            "missing key",
            cert.clone(),
            missing.clone(),
            PathBuf::new(),
            "server.tls.key_file",
        ),
        (
            "junk key",
            cert.clone(),
            junk.clone(),
            PathBuf::new(),
            "server.tls.key_file",
        ),
        (
            "key of another certificate",
            cert.clone(),
            other_key,
            PathBuf::new(),
            "server.tls.key_file",
        ),
        (
            "junk client CA",
            cert.clone(),
            key.clone(),
            junk.clone(),
            "server.tls.client_ca_file",
        ),
        (
            "missing client CA",
            cert.clone(),
            key.clone(),
            missing.clone(),
            "server.tls.client_ca_file",
        ),
    ];
    for (name, cert_file, key_file, client_ca_file, want_key) in cases {
        let store = tempfile::tempdir().expect("store");
        let mut settings = test_settings(&store.path().join("store"));
        settings.server.tls = Some(TlsSettings {
            cert_file,
            key_file,
            client_ca_file,
        });
        match Application::build(settings).await {
            Ok(_) => panic!("{name}: start-up must fail"),
            Err(e) => assert!(e.to_string().contains(want_key), "{name}: {e}"),
        }
    }
    // A client naming a certificate while no client CA is configured: refused at load.
    let mut settings = test_settings(&dir.path().join("store"));
    settings.orbipay.clients[0].tls_subject = Some(TlsSubject::parse("CN=x").expect("subject"));
    let e = settings.validate().expect_err("tls_subject without client_ca_file");
    assert!(e.to_string().contains("orbipay.clients[0].tls_subject"), "{e}");
}

#[tokio::test]
async fn the_binary_serves_https_and_says_so() {
    let ca = test_ca();
    let dir = tempfile::tempdir().expect("dir");
    ca.server_pair(TEST_SERVER_CN).write(&dir.path().join("tls"));
    // Relative to the configuration file's folder, like every path in a configuration file.
    let config = write_config(
        dir.path(),
        &dir.path().join("store"),
        "[server.tls]\ncert_file = \"tls/cert.pem\"\nkey_file = \"tls/key.pem\"\n",
    );
    let log = dir.path().join("server.log");
    let mut server = start_binary(&config, &log).await;
    assert!(server.address.starts_with("https://127.0.0.1:"), "{}", server.address);
    let r = ca
        .client(None)
        .build()
        .expect("client")
        .get(format!("{}/health/ready", server.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    server.kill().await;
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("TLS certificate loaded"), "{text}");
}
