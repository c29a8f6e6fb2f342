//! `biller-inbox replay PATH... --target URL [--sign-key PEM]`: send fixture files
//! (docs/operations.md, Fixture files) to a running server and compare each answer with the fixture's
//! expectation.
//!
//! Every fixture is read and checked before the first request goes out, so an invalid file
//! (exit 2, named) never leaves a half-replayed sequence behind. Then the files are sent one at a
//! time, in the order given (folders: their `*.json` files in name order), because a corpus is a
//! sequence: a re-post only means something after the post.
//!
//! Exit status: 0 when every answer matches, 1 on any mismatch, 2 when a fixture is invalid, the
//! signing key is unusable or the target cannot be reached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use serde_json::{Map, Value};

use super::Failure;
use crate::empayre::signature::BodySigner;
use crate::settings::Settings;

/// The header Empayre signs with (spec B1.2).
const CONTENT_SIGNATURE: &str = "content-signature";
/// The default Empayre route the fixtures are written for (`empayre.path` of the demo set-up).
const DEFAULT_EMPAYRE_PATH: &str = "/empayre/webhook";
/// The lookup endpoint, whose body goes as a form when it is an object of strings.
const LOOKUP_ENDPOINT: &str = "/mpacustomers";
/// One request may take this long before the target counts as unreachable (the server itself
/// answers webhooks well inside Empayre's 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Options {
    pub paths: Vec<PathBuf>,
    pub target: String,
    pub sign_key: PathBuf,
    /// The `--config` file, when one was given: its `orbipay.base_path` and `empayre.path` place
    /// the fixtures' endpoints on the target's routes.
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Orbipay,
    Empayre,
}

/// What goes into `Content-Signature` for an Empayre fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Signature {
    /// Signed with the replay key (no `signature` key in the fixture).
    Sign,
    /// Sent exactly as written (`"signature": "alg=RS256; digest=..."`).
    Verbatim(String),
    /// No header at all (`"signature": null`).
    Omit,
}

/// What a fixture expects, and (the same shape) what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    status: u16,
    /// The first error code (`errors[0].code`); `None` for 2xx and for Empayre.
    code: Option<String>,
    /// Optional: the `status` string of the answer body, Empayre's `stored`, `duplicate` or
    /// `quarantined` (spec A3). Checked only when the fixture gives it.
    answer: Option<String>,
}

impl Expect {
    /// Whether `got` satisfies this expectation.
    fn matches(&self, got: &Expect) -> bool {
        self.status == got.status && self.code == got.code && (self.answer.is_none() || self.answer == got.answer)
    }

    /// `status code` plus, when the fixture expects one, the answer's status string.
    fn show(&self, with_answer: bool) -> String {
        let mut text = format!("{} {}", self.status, self.code.as_deref().unwrap_or("-"));
        if with_answer {
            text.push(' ');
            text.push_str(self.answer.as_deref().unwrap_or("-"));
        }
        text
    }
}

#[derive(Debug)]
struct Fixture {
    /// The path as the user will recognise it (the given folder joined with the file name).
    name: String,
    channel: Channel,
    endpoint: String,
    headers: HeaderMap,
    body: Value,
    signature: Signature,
    expect: Expect,
}

pub fn run(options: &Options) -> Result<(), Failure> {
    let target = parse_target(&options.target)?;
    let routes = match &options.config {
        Some(file) => Routes::from_settings(&Settings::load(Some(file)).map_err(|e| Failure::usage(e.to_string()))?),
        None => Routes::default(),
    };
    let files = collect_files(&options.paths)?;
    let fixtures = files
        .iter()
        .map(|path| load_fixture(path))
        .collect::<Result<Vec<_>, _>>()?;
    let signer = if fixtures
        .iter()
        .any(|f| f.channel == Channel::Empayre && f.signature == Signature::Sign)
    {
        Some(load_signer(&options.sign_key)?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the HTTP client runtime: {e}")))?;
    let failed = runtime.block_on(replay_all(&target, &routes, &fixtures, signer.as_ref()))?;
    if failed > 0 {
        return Err(Failure::check(format!(
            "{failed} of {} fixtures did not get the expected answer",
            fixtures.len()
        )));
    }
    Ok(())
}

/// Where the fixtures' endpoints land on the target.
#[derive(Debug, Default)]
struct Routes {
    orbipay_base: String,
    /// `Some(path)` when the target's Empayre route is not the default one.
    empayre_path: Option<String>,
}

impl Routes {
    fn from_settings(settings: &Settings) -> Self {
        let path = settings.empayre.path.trim_end_matches('/');
        Self {
            orbipay_base: settings.orbipay.base_path.trim_end_matches('/').to_string(),
            empayre_path: (path != DEFAULT_EMPAYRE_PATH).then(|| path.to_string()),
        }
    }

    fn path(&self, fixture: &Fixture) -> String {
        match fixture.channel {
            Channel::Orbipay => format!("{}{}", self.orbipay_base, fixture.endpoint),
            Channel::Empayre => match (&self.empayre_path, fixture.endpoint.strip_prefix(DEFAULT_EMPAYRE_PATH)) {
                (Some(path), Some(rest)) if rest.is_empty() || rest.starts_with('/') => format!("{path}{rest}"),
                _ => fixture.endpoint.clone(),
            },
        }
    }
}

fn parse_target(target: &str) -> Result<String, Failure> {
    let url =
        reqwest::Url::parse(target).map_err(|e| Failure::usage(format!("--target {target} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Failure::usage(format!(
            "--target {target} must be an http:// or https:// URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Failure::usage(format!(
            "--target {target} must not carry a query or fragment"
        )));
    }
    Ok(target.trim_end_matches('/').to_string())
}

/// Files as given; folders expand to their `*.json` files in name order. A folder without any is
/// an error (most likely a wrong path), as is a path that does not exist.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| Failure::usage(format!("cannot read folder {}: {e}", path.display())))?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Failure::usage(format!("cannot read folder {}: {e}", path.display())))?;
                let file = entry.path();
                if file.extension().is_some_and(|x| x == "json") && file.is_file() {
                    found.push(file);
                }
            }
            if found.is_empty() {
                return Err(Failure::usage(format!(
                    "folder {} holds no *.json fixtures",
                    path.display()
                )));
            }
            found.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(Failure::usage(format!("{}: no such file or folder", path.display())));
        }
    }
    Ok(files)
}

fn load_fixture(path: &Path) -> Result<Fixture, Failure> {
    let name = path.display().to_string();
    let invalid = |why: String| Failure::usage(format!("invalid fixture {name}: {why}"));
    let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("cannot read fixture {name}: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(invalid("not a JSON object".into()));
    };
    parse_fixture(name.clone(), &mut map).map_err(invalid)
}

/// The fixture format of docs/operations.md, Fixture files, plus two optional keys: `description` (free text
/// for readers) and, for Empayre, `signature` (a verbatim `Content-Signature` value, or `null`
/// for none). Unknown keys are refused so a misspelt key cannot silently change a case.
fn parse_fixture(name: String, map: &mut Map<String, Value>) -> Result<Fixture, String> {
    const KNOWN: [&str; 7] = [
        "description",
        "channel",
        "endpoint",
        "headers",
        "body",
        "signature",
        "expect",
    ];
    if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("unknown key `{unknown}` (known: {})", KNOWN.join(", ")));
    }
    if map.get("description").is_some_and(|d| !d.is_string()) {
        return Err("`description` must be a string".into());
    }
    let channel = match map.get("channel").and_then(Value::as_str) {
        Some("orbipay") => Channel::Orbipay,
        Some("empayre") => Channel::Empayre,
        _ => return Err("`channel` must be \"orbipay\" or \"empayre\"".into()),
    };
    let endpoint = match map.get("endpoint").and_then(Value::as_str) {
        Some(e) if e.starts_with('/') && !e.contains(char::is_whitespace) => e.to_string(),
        _ => return Err("`endpoint` must be a path starting with /".into()),
    };
    let headers = parse_headers(map.get("headers"))?;
    let body = map.remove("body").ok_or("`body` is missing")?;
    let signature = match (channel, map.get("signature")) {
        (_, None) => Signature::Sign,
        (Channel::Empayre, Some(Value::Null)) => Signature::Omit,
        (Channel::Empayre, Some(Value::String(s))) => {
            HeaderValue::from_str(s).map_err(|_| "`signature` is not a valid header value".to_string())?;
            Signature::Verbatim(s.clone())
        }
        (Channel::Empayre, Some(_)) => return Err("`signature` must be a string or null".into()),
        (Channel::Orbipay, Some(_)) => return Err("`signature` applies to empayre fixtures only".into()),
    };
    let expect = parse_expect(map.get("expect"))?;
    Ok(Fixture {
        name,
        channel,
        endpoint,
        headers,
        body,
        signature,
        expect,
    })
}

fn parse_headers(value: Option<&Value>) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let map = match value {
        None | Some(Value::Null) => return Ok(headers),
        Some(Value::Object(map)) => map,
        Some(_) => return Err("`headers` must be an object of strings".into()),
    };
    for (key, value) in map {
        let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| format!("header name `{key}` is not valid"))?;
        let value = value
            .as_str()
            .ok_or_else(|| format!("header `{key}` must be a string"))?;
        let value = HeaderValue::from_str(value).map_err(|_| format!("header `{key}` has an invalid value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn parse_expect(value: Option<&Value>) -> Result<Expect, String> {
    let Some(Value::Object(map)) = value else {
        return Err("`expect` must be an object {\"status\": N, \"code\": ...}".into());
    };
    if let Some(unknown) = map.keys().find(|k| !matches!(k.as_str(), "status" | "code" | "answer")) {
        return Err(format!("unknown key `expect.{unknown}` (known: status, code, answer)"));
    }
    let status = map
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| u16::try_from(s).ok())
        .ok_or("`expect.status` must be an HTTP status (100-599)")?;
    let code = match map.get("code") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
        Some(_) => return Err("`expect.code` must be a non-empty string or null".into()),
    };
    let answer = match map.get("answer") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if !a.is_empty() => Some(a.clone()),
        Some(_) => return Err("`expect.answer` must be a non-empty string or null".into()),
    };
    Ok(Expect { status, code, answer })
}

fn load_signer(path: &Path) -> Result<BodySigner, Failure> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        let hint = if path.is_relative() {
            let cwd = std::env::current_dir().unwrap_or_default();
            format!(
                " (relative to the working directory {}; run from the repository root or pass --sign-key PEM)",
                cwd.display()
            )
        } else {
            String::new()
        };
        Failure::usage(format!("cannot read the signing key {}: {e}{hint}", path.display()))
    })?;
    BodySigner::from_pem(&pem)
        .map_err(|e| Failure::usage(format!("the signing key {} is not usable: {e}", path.display())))
}

/// Sends every fixture in order and prints one line each; returns how many did not match.
async fn replay_all(
    target: &str,
    routes: &Routes,
    fixtures: &[Fixture],
    signer: Option<&BodySigner>,
) -> Result<usize, Failure> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Failure::usage(format!("cannot build the HTTP client: {e}")))?;
    let name_width = fixtures.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let expect_width = fixtures
        .iter()
        .map(|f| f.expect.show(f.expect.answer.is_some()).len())
        .max()
        .unwrap_or(0);
    let (mut passed, mut failed) = (0usize, 0usize);
    for fixture in fixtures {
        let url = format!("{target}{}", routes.path(fixture));
        let request = build_request(&client, &url, fixture, signer)?;
        let (got, answer) = send(request)
            .await
            .map_err(|e| Failure::usage(format!("{}: cannot reach {target}: {}", fixture.name, chain(&e))))?;
        let ok = fixture.expect.matches(&got);
        let with_answer = fixture.expect.answer.is_some();
        println!(
            "{:<name_width$}  expected {:<expect_width$}  got {:<expect_width$}  {}",
            fixture.name,
            fixture.expect.show(with_answer),
            got.show(with_answer),
            if ok { "ok" } else { "MISMATCH" }
        );
        if ok {
            passed += 1;
        } else {
            failed += 1;
            println!("    answer: {}", excerpt(&answer));
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed)
}

fn build_request(
    client: &reqwest::Client,
    url: &str,
    fixture: &Fixture,
    signer: Option<&BodySigner>,
) -> Result<reqwest::RequestBuilder, Failure> {
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("biller-inbox-replay/", env!("CARGO_PKG_VERSION"))),
    );
    if let Ok(id) = HeaderValue::from_str(&request_id(&fixture.name)) {
        headers.insert("x-request-id", id);
    }
    let body = match fixture.channel {
        Channel::Orbipay => match form_fields(&fixture.endpoint, &fixture.body) {
            Some(fields) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                serde_urlencoded::to_string(fields)
                    .map_err(|e| Failure::usage(format!("invalid fixture {}: body as a form: {e}", fixture.name)))?
                    .into_bytes()
            }
            None => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                compact(fixture)?
            }
        },
        Channel::Empayre => {
            // The platform's exact shape: compact JSON, `application/json` without a charset.
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let body = compact(fixture)?;
            let signature = match (&fixture.signature, signer) {
                (Signature::Sign, Some(signer)) => Some(
                    signer
                        .sign_header(&body)
                        .map_err(|e| Failure::usage(format!("{}: cannot sign the body: {e}", fixture.name)))?,
                ),
                (Signature::Sign, None) => {
                    return Err(Failure::usage(format!("{}: no signing key loaded", fixture.name)))
                }
                (Signature::Verbatim(s), _) => Some(s.clone()),
                (Signature::Omit, _) => None,
            };
            if let Some(signature) = signature {
                let value = HeaderValue::from_str(&signature)
                    .map_err(|_| Failure::usage(format!("invalid fixture {}: signature header value", fixture.name)))?;
                headers.insert(CONTENT_SIGNATURE, value);
            }
            body
        }
    };
    // The fixture's own headers win, so a fixture can send a wrong content type on purpose.
    for (name, value) in &fixture.headers {
        headers.insert(name.clone(), value.clone());
    }
    Ok(client.post(url).headers(headers).body(body))
}

/// A lookup whose body is an object of strings goes as a form, in the fixture's key order;
/// anything else goes as JSON.
fn form_fields<'a>(endpoint: &str, body: &'a Value) -> Option<Vec<(&'a str, &'a str)>> {
    if endpoint != LOOKUP_ENDPOINT {
        return None;
    }
    body.as_object()?
        .iter()
        .map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
        .collect()
}

/// Compact JSON in the fixture's key order (serde_json's `preserve_order`).
fn compact(fixture: &Fixture) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(&fixture.body)
        .map_err(|e| Failure::usage(format!("invalid fixture {}: body: {e}", fixture.name)))
}

/// `replay-<file stem>`, so the server's log lines for a fixture are easy to find.
fn request_id(name: &str) -> String {
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem: String = stem
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(100)
        .collect();
    format!("replay-{stem}")
}

async fn send(request: reqwest::RequestBuilder) -> Result<(Expect, String), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((
        Expect {
            status,
            code: first_error_code(&value),
            answer: value.get("status").and_then(Value::as_str).map(str::to_string),
        },
        text,
    ))
}

/// The first error code of an answer: `errors[0].code` (the Orbipay envelope), else a top-level
/// `code` (admin-style errors). Empayre answers carry none.
fn first_error_code(body: &Value) -> Option<String> {
    body.pointer("/errors/0/code")
        .or_else(|| body.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// An error with its causes ("error sending request: ... : Connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// One line of the answer for a mismatch report.
fn excerpt(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if text.chars().count() > 300 {
        format!("{flat}…")
    } else if flat.is_empty() {
        "(empty body)".to_string()
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Fixture, String> {
        let Value::Object(mut map) = value else {
            panic!("object expected");
        };
        parse_fixture("f.json".into(), &mut map)
    }

    #[test]
    fn a_minimal_fixture_parses() {
        let f = parse(json!({"channel": "orbipay", "endpoint": "/paymentposting", "body": {},
                             "expect": {"status": 200, "code": null}}))
        .unwrap();
        assert_eq!(f.channel, Channel::Orbipay);
        assert_eq!(
            f.expect,
            Expect {
                status: 200,
                code: None,
                answer: None
            }
        );
        assert_eq!(f.signature, Signature::Sign);
    }

    #[test]
    fn signatures_verbatim_or_omitted() {
        let base = json!({"channel": "empayre", "endpoint": "/empayre/webhook", "body": {"eventID": 1},
                          "expect": {"status": 401}});
        let mut verbatim = base.clone();
        verbatim["signature"] = json!("alg=RS256; digest=AAAA");
        assert_eq!(
            parse(verbatim).unwrap().signature,
            Signature::Verbatim("alg=RS256; digest=AAAA".into())
        );
        let mut omitted = base;
        omitted["signature"] = Value::Null;
        assert_eq!(parse(omitted).unwrap().signature, Signature::Omit);
    }

    #[test]
    fn invalid_fixtures_say_why() {
        let cases = [
            (
                json!({"channel": "ftp", "endpoint": "/x", "body": {}, "expect": {"status": 200}}),
                "channel",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "x", "body": {}, "expect": {"status": 200}}),
                "endpoint",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "expect": {"status": 200}}),
                "body",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "expect": {"status": 20}}),
                "expect.status",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "expect": {"status": "200"}}),
                "expect.status",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "expect": {"status": 200, "code": 5}}),
                "expect.code",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "expect": {"status": 200, "cod": null}}),
                "expect.cod",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "expects": {"status": 200}}),
                "expects",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "headers": {"a": 1}, "expect": {"status": 200}}),
                "header `a`",
            ),
            (
                json!({"channel": "orbipay", "endpoint": "/x", "body": {}, "signature": "s", "expect": {"status": 200}}),
                "signature",
            ),
        ];
        for (value, needle) in cases {
            let err = parse(value.clone()).expect_err(&value.to_string());
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn lookups_of_strings_go_as_forms() {
        let form = json!({"account_number": "ACC-1", "email": ""});
        assert_eq!(
            form_fields("/mpacustomers", &form),
            Some(vec![("account_number", "ACC-1"), ("email", "")])
        );
        assert_eq!(
            form_fields("/mpacustomers", &json!({"account_number": ["ACC-1"]})),
            None
        );
        assert_eq!(form_fields("/paymentposting", &form), None);
    }

    #[test]
    fn routes_follow_the_configuration() {
        let fixture = |channel, endpoint: &str| Fixture {
            name: "f".into(),
            channel,
            endpoint: endpoint.into(),
            headers: HeaderMap::new(),
            body: Value::Null,
            signature: Signature::Sign,
            expect: Expect {
                status: 200,
                code: None,
                answer: None,
            },
        };
        let routes = Routes {
            orbipay_base: "/ebpp".into(),
            empayre_path: Some("/hooks/empayre".into()),
        };
        assert_eq!(
            routes.path(&fixture(Channel::Orbipay, "/paymentposting")),
            "/ebpp/paymentposting"
        );
        assert_eq!(
            routes.path(&fixture(Channel::Empayre, "/empayre/webhook")),
            "/hooks/empayre"
        );
        assert_eq!(
            routes.path(&fixture(Channel::Empayre, "/empayre/webhook/demo")),
            "/hooks/empayre/demo"
        );
        assert_eq!(
            routes.path(&fixture(Channel::Empayre, "/empayre/webhooks")),
            "/empayre/webhooks"
        );
        assert_eq!(
            Routes::default().path(&fixture(Channel::Empayre, "/empayre/webhook")),
            "/empayre/webhook"
        );
    }

    #[test]
    fn error_codes_come_from_either_envelope() {
        assert_eq!(
            first_error_code(&json!({"errors": [{"code": "error_field"}, {"code": "x"}]})).as_deref(),
            Some("error_field")
        );
        assert_eq!(
            first_error_code(&json!({"code": "bad_request"})).as_deref(),
            Some("bad_request")
        );
        assert_eq!(first_error_code(&json!({"status": "stored"})), None);
        assert_eq!(first_error_code(&Value::Null), None);
    }

    #[test]
    fn the_answer_is_checked_only_when_expected() {
        let got = Expect {
            status: 200,
            code: None,
            answer: Some("duplicate".into()),
        };
        let mut want = Expect {
            status: 200,
            code: None,
            answer: None,
        };
        assert!(want.matches(&got));
        want.answer = Some("stored".into());
        assert!(!want.matches(&got));
        want.answer = Some("duplicate".into());
        assert!(want.matches(&got));
        assert_eq!(want.show(true), "200 - duplicate");
        assert_eq!(want.show(false), "200 -");
    }

    #[test]
    fn targets_are_checked() {
        assert_eq!(
            parse_target("http://127.0.0.1:8080/").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(parse_target("127.0.0.1:8080").is_err());
        assert!(parse_target("ftp://host").is_err());
    }
}
