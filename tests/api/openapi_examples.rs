//! The documented examples against the service itself: the real binary on the demo set-up
//! (`config/default.toml`, a fresh store seeded by replaying `fixtures/empayre`, as the
//! conformance gate runs it) is sent each operation's request examples, and every 2xx answer
//! follows its response schema and has exactly the top-level fields of the documented example
//! (so an example cannot show a field the service no longer sends, or miss one it sends).

use biller_inbox::openapi::examples::conforms;
use serde_json::Value;

use crate::helpers::*;

/// The request examples of an operation: the body's own `example`, or those of its schema.
fn request_examples(doc: &Value, operation: &Value) -> Option<(String, Vec<Value>)> {
    let (media_type, content) = operation["requestBody"]["content"].as_object()?.iter().next()?;
    let mut examples: Vec<Value> = content.get("example").cloned().into_iter().collect();
    if examples.is_empty() {
        let schema = match content["schema"]["$ref"].as_str() {
            Some(reference) => doc.pointer(reference.trim_start_matches('#'))?,
            None => &content["schema"],
        };
        examples = schema["examples"]
            .as_array()
            .cloned()
            .or_else(|| schema.get("example").map(|e| vec![e.clone()]))?;
    }
    Some((media_type.clone(), examples))
}

#[tokio::test]
async fn real_answers_follow_the_schema_and_the_fields_of_the_documented_examples() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &dir.path().join("store"), "");
    let mut server = start_binary(&config, &dir.path().join("server.log")).await;
    let replayed = tokio::process::Command::new(binary())
        .args(["replay", "fixtures/empayre", "--target", &server.address])
        .args(["--sign-key", "fixtures/keys/empayre_test_private.pem"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BILLER_INBOX_CONFIG")
        .output()
        .await
        .expect("replay runs");
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(format!("{}/openapi.json", server.address))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let signer = fixture_signer();
    let mut compared = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let id = operation["operationId"].as_str().expect("operationId").to_string();
            let mut concrete = path.clone();
            for p in operation["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let example = match &p["example"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    concrete = concrete.replace(&format!("{{{}}}", p["name"].as_str().unwrap_or_default()), &example);
                }
            }
            let bodies: Vec<(String, Vec<u8>)> = match request_examples(&doc, operation) {
                None if operation.get("requestBody").is_some() => continue, // nothing documented to send
                None => vec![(String::new(), Vec::new())],
                Some((media_type, examples)) => examples
                    .iter()
                    .map(|e| {
                        let bytes = if media_type == "application/x-www-form-urlencoded" {
                            serde_urlencoded::to_string(e).expect("form").into_bytes()
                        } else {
                            serde_json::to_vec(e).expect("json")
                        };
                        (media_type.clone(), bytes)
                    })
                    .collect(),
            };
            for (media_type, body) in bodies {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                let mut request = client.request(method.clone(), format!("{}{concrete}", server.address));
                match operation["tags"][0].as_str() {
                    Some("admin") => request = request.bearer_auth("demo-admin-token"),
                    Some("orbipay") => {
                        request = request
                            .header("client-key", "demo-client")
                            .header("api-key", "demo-api-key")
                    }
                    Some("empayre") => {
                        request = request.header("Content-Signature", signer.sign_header(&body).expect("signed"))
                    }
                    _ => {}
                }
                if !media_type.is_empty() {
                    request = request.header("content-type", media_type).body(body);
                }
                let r = request.send().await.expect("sent");
                let status = r.status().as_u16();
                let text = r.text().await.expect("body");
                let documented = &operation["responses"][status.to_string()];
                assert!(
                    documented.is_object(),
                    "{method} {concrete}: {status} is not documented: {text}"
                );
                if !(200..300).contains(&status) {
                    continue;
                }
                let Some((content_type, content)) = documented["content"].as_object().and_then(|c| c.iter().next())
                else {
                    continue;
                };
                if content_type != "application/json" {
                    continue;
                }
                let answer: Value = serde_json::from_str(&text).expect("a JSON answer");
                if let Err(why) = conforms(&doc, &content["schema"], &answer, "$") {
                    panic!("{method} {concrete}: the answer does not follow the schema: {why}\n{answer}");
                }
                let example = &content["example"];
                if id != "openapi_json" {
                    let keys = |v: &Value| -> Vec<String> {
                        let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
                        k.sort();
                        k
                    };
                    assert_eq!(
                        keys(&answer),
                        keys(example),
                        "{method} {concrete}: fields of the answer vs the example"
                    );
                }
                compared.push(id.clone());
            }
        }
    }
    server.kill().await;
    compared.dedup();
    for id in [
        "lookup",
        "payment",
        "reversal",
        "refund",
        "empayre_webhook",
        "empayre_webhook_source",
        "live",
        "ready",
        "search",
        "record",
        "account",
        "put_accounts",
        "journal",
        "rejections",
        "events",
        "event",
        "quarantine",
        "unmatched",
        "assign",
    ] {
        assert!(
            compared.iter().any(|c| c == id),
            "{id}: no 2xx answer was compared ({compared:?})"
        );
    }
}
