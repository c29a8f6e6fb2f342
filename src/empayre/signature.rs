//! `Content-Signature` parsing and RS256 verification of Empayre webhook bodies.
//!
//! Empayre signs the exact body bytes with RSASSA-PKCS1-v1_5 / SHA-256 and sends
//! `Content-Signature: alg=RS256; digest=<base64url signature>` (spec B1.2, B1.3). The signature
//! is the only thing that authenticates a webhook, so it is checked before any parsing (A2).
//! The header parser follows the spec's tolerant-but-strict advice: lenient about whitespace,
//! attribute case, unknown attributes, padding and alphabet, strict about the algorithm and about
//! there being exactly one digest; the RSA check is what actually decides.
//!
//! Verification uses `ring` (about as fast as OpenSSL; the `rsa` crate is ~7x slower, A2).
//! The test-key helpers at the end serve the `keygen`/`replay` commands and the test suites.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer as _};
use rsa::RsaPrivateKey;
use sha2::Sha256;

use crate::empayre::keys::{KeyError, SourceKey};

/// The platform's encoding: URL-safe alphabet, and padding present (`Base64.getUrlEncoder()`),
/// but accepted without it too. `URL_SAFE_NO_PAD` would reject the real padded header, and plain
/// `URL_SAFE` would reject unpadded copies (B1.2 step 5).
const DIGEST_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Senders before 2017-05-17 used `Base64.getEncoder()` (standard alphabet).
const DIGEST_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Exactly what the platform emits, so the replay tool and tests produce realistic headers.
const DIGEST_ENCODE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, GeneralPurposeConfig::new());

/// Why a request's signature was rejected. [`SignatureError::cause`] gives the closed-set
/// rejection cause for metrics and the rejection log; `Display` gives the 401 message. Messages
/// never echo header content: it comes from an unauthenticated peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Content-Signature header is missing")]
    Missing,
    #[error("Content-Signature header is empty")]
    EmptyHeader,
    #[error("Content-Signature has no alg attribute")]
    MissingAlg,
    #[error("Content-Signature has more than one alg attribute")]
    DuplicateAlg,
    #[error("unsupported alg in Content-Signature (only RS256)")]
    UnsupportedAlg,
    #[error("Content-Signature has no digest attribute")]
    MissingDigest,
    #[error("Content-Signature has more than one digest attribute")]
    DuplicateDigest,
    #[error("Content-Signature digest is empty")]
    EmptyDigest,
    #[error("Content-Signature digest is not base64")]
    DigestNotBase64,
    #[error("signature is {got} bytes, which matches the modulus length of no key of source")]
    WrongLength { got: usize },
    #[error("no key is configured for this source")]
    NoKeys,
    #[error("signature does not verify with any key of source")]
    NotVerified,
}

impl SignatureError {
    /// Rejection cause from the closed set of the admin API: only an absent header is
    /// `signature_missing`; everything else (malformed, wrong alg, wrong key…) is
    /// `signature_invalid`.
    pub fn cause(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            _ => "signature_invalid",
        }
    }
}

/// Parse a `Content-Signature` header value into the raw signature bytes (B1.2 ADVICE).
///
/// Split on `;`, trim ASCII whitespace, split each part on the first `=` only (the digest ends in
/// `=`), compare names case-insensitively, ignore unknown attributes (the spec says the set "may
/// be extended"), require exactly one `alg` (`RS256`, or `rs256`) and exactly one `digest`.
pub fn parse_content_signature(header: &str) -> Result<Vec<u8>, SignatureError> {
    if header.trim_matches(|c: char| c.is_ascii_whitespace()).is_empty() {
        return Err(SignatureError::EmptyHeader);
    }
    let mut alg: Option<&str> = None;
    let mut digest: Option<&str> = None;
    for part in header.split(';') {
        let part = part.trim_matches(|c: char| c.is_ascii_whitespace());
        if part.is_empty() {
            // `a=b;` or `;;`: harmless, nothing to read.
            continue;
        }
        // A part without `=` is a bare attribute name with an empty value: for alg/digest that is
        // an error reported below, anything else is an (unknown) extension and ignored.
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = name.trim_matches(|c: char| c.is_ascii_whitespace());
        let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
        if name.eq_ignore_ascii_case("alg") {
            if alg.replace(value).is_some() {
                return Err(SignatureError::DuplicateAlg);
            }
        } else if name.eq_ignore_ascii_case("digest") && digest.replace(value).is_some() {
            return Err(SignatureError::DuplicateDigest);
        }
    }

    match alg {
        None => return Err(SignatureError::MissingAlg),
        Some("RS256" | "rs256") => {}
        Some(_) => return Err(SignatureError::UnsupportedAlg),
    }
    let digest = digest.ok_or(SignatureError::MissingDigest)?;
    if digest.is_empty() {
        return Err(SignatureError::EmptyDigest);
    }
    // The platform's URL-safe form first; the standard alphabet only if that fails (a digest
    // mixing both alphabets is rejected, as no sender ever produced one).
    let bytes = DIGEST_URL_SAFE
        .decode(digest)
        .or_else(|_| DIGEST_STANDARD.decode(digest))
        .map_err(|_| SignatureError::DigestNotBase64)?;
    if bytes.is_empty() {
        // Only `=`-padding: decodes to nothing.
        return Err(SignatureError::EmptyDigest);
    }
    Ok(bytes)
}

/// Verify RSASSA-PKCS1-v1_5 / SHA-256 of exactly `body` against each key in turn; return the
/// key that verified (its id is stored with the event).
///
/// Keys whose modulus length differs from the signature length are skipped without an RSA
/// operation (B1.2 step 6); if no key has that length the error says so, which lets an
/// operator tell a truncated header from a wrong key.
pub fn verify<'k>(keys: &'k [SourceKey], body: &[u8], signature: &[u8]) -> Result<&'k SourceKey, SignatureError> {
    if keys.is_empty() {
        return Err(SignatureError::NoKeys);
    }
    let mut length_matched = false;
    for key in keys {
        if signature.len() != key.modulus_len() {
            continue;
        }
        length_matched = true;
        if key.verify_raw(body, signature) {
            return Ok(key);
        }
    }
    if length_matched {
        Err(SignatureError::NotVerified)
    } else {
        Err(SignatureError::WrongLength { got: signature.len() })
    }
}

/// Header-to-verdict in one call for the handler: `None` (header absent) gives
/// [`SignatureError::Missing`], i.e. cause `signature_missing`.
pub fn verify_content_signature<'k>(
    keys: &'k [SourceKey],
    body: &[u8],
    header: Option<&str>,
) -> Result<&'k SourceKey, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let signature = parse_content_signature(header)?;
    verify(keys, body, &signature)
}

/// Fresh RSA-2048 test key pair as (PKCS#8 private PEM, SPKI public PEM), both LF-terminated:
/// the format of `keygen` and of the repository's fixture keys. Never for production use; the
/// real private key lives with the platform.
pub fn generate_test_key_pair() -> Result<(String, String), KeyError> {
    let mut rng = rand::rngs::OsRng;
    let private = RsaPrivateKey::new(&mut rng, 2048).map_err(|e| KeyError::Generate(e.to_string()))?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok((private_pem.to_string(), public_pem))
}

/// Sign `body` like the platform does and return the full header value
/// `alg=RS256; digest=<URL-safe base64 with padding>`.
///
/// Parses the key on every call; to sign many bodies, build a [`BodySigner`] once.
pub fn sign_body(private_pem: &str, body: &[u8]) -> Result<String, KeyError> {
    BodySigner::from_pem(private_pem)?.sign_header(body)
}

/// A parsed private key for signing many bodies (replay tool, tests). Uses `ring` when it
/// accepts the key (2048..4096 bits, fast), otherwise the `rsa` crate (e.g. 1024-bit legacy test
/// keys, which `ring` refuses to sign with).
pub struct BodySigner {
    inner: SignerImpl,
}

enum SignerImpl {
    Ring(ring::signature::RsaKeyPair),
    Rsa(rsa::pkcs1v15::SigningKey<Sha256>),
}

impl std::fmt::Debug for BodySigner {
    // Never print private key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.inner {
            SignerImpl::Ring(_) => "ring",
            SignerImpl::Rsa(_) => "rsa",
        };
        f.debug_struct("BodySigner")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

impl BodySigner {
    /// Accepts PKCS#8 (`BEGIN PRIVATE KEY`, what `keygen` writes) and PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) PEM; literal `\n` escapes (keys passed through env or JSON)
    /// are turned back into newlines.
    pub fn from_pem(private_pem: &str) -> Result<Self, KeyError> {
        let pem = private_pem.replace("\\r", "").replace("\\n", "\n");
        let pem = pem.trim();
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| KeyError::PrivateKey)?;
        // Normalize through `rsa` so `ring` always sees the PKCS#8 v1 layout it expects.
        let pkcs8 = private.to_pkcs8_der().map_err(|e| KeyError::Encode(e.to_string()))?;
        let inner = match ring::signature::RsaKeyPair::from_pkcs8(pkcs8.as_bytes()) {
            Ok(pair) => SignerImpl::Ring(pair),
            Err(_) => SignerImpl::Rsa(rsa::pkcs1v15::SigningKey::<Sha256>::new(private)),
        };
        Ok(Self { inner })
    }

    /// Raw RSASSA-PKCS1-v1_5 / SHA-256 signature of `body`.
    pub fn sign(&self, body: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            SignerImpl::Ring(pair) => {
                let rng = ring::rand::SystemRandom::new();
                let mut out = vec![0u8; pair.public().modulus_len()];
                pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, body, &mut out)
                    .map_err(|_| KeyError::Sign)?;
                Ok(out)
            }
            SignerImpl::Rsa(key) => key.try_sign(body).map(|s| s.to_vec()).map_err(|_| KeyError::Sign),
        }
    }

    /// Full `Content-Signature` value, formatted exactly as the platform sends it.
    pub fn sign_header(&self, body: &[u8]) -> Result<String, KeyError> {
        let signature = self.sign(body)?;
        Ok(format!("alg=RS256; digest={}", DIGEST_ENCODE.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::empayre::keys::parse_public_key;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use std::sync::OnceLock;

    fn vector(name: &str) -> Vec<u8> {
        crate::test_data::empayre_vector(name)
    }

    fn vector_text(name: &str) -> String {
        String::from_utf8(vector(name)).unwrap()
    }

    fn tv_body() -> Vec<u8> {
        vector("tv_body.json")
    }

    fn tv_header() -> String {
        vector_text("tv_header.txt")
    }

    fn tv_key() -> SourceKey {
        parse_public_key(&vector_text("tv_pub_spki.pem")).unwrap()
    }

    fn tv_digest() -> String {
        tv_header().strip_prefix("alg=RS256; digest=").unwrap().to_string()
    }

    /// One generated pair shared by the tests (generation takes a while in debug builds).
    fn test_pair() -> &'static (String, String) {
        static PAIR: OnceLock<(String, String)> = OnceLock::new();
        PAIR.get_or_init(|| generate_test_key_pair().unwrap())
    }

    #[test]
    fn vector_matches_spec() {
        use sha2::Digest;
        let body = tv_body();
        assert_eq!(body.len(), 615);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&body)),
            "2a1cf7a6222240003a8082c68041b39d34d18ea92c48e678c86b768d954de823"
        );
        let sig = parse_content_signature(&tv_header()).unwrap();
        assert_eq!(sig.len(), 256);
    }

    #[test]
    fn vector_verifies_with_every_key_form() {
        let pem = vector_text("tv_pub_spki.pem");
        let forms = [
            ("spki pem", pem.clone()),
            ("spki pem CRLF", pem.replace('\n', "\r\n")),
            ("spki pem literal \\n", pem.replace('\n', "\\n")),
            ("bare pkcs1 base64", vector_text("tv_pub_pkcs1.b64")),
            (
                "bare pkcs1 base64 with newline",
                format!("{}\n", vector_text("tv_pub_pkcs1.b64")),
            ),
        ];
        let body = tv_body();
        let header = tv_header();
        for (name, text) in forms {
            let keys = vec![parse_public_key(&text).unwrap_or_else(|e| panic!("{name}: {e}"))];
            let used = verify_content_signature(&keys, &body, Some(&header)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(used.id, keys[0].id, "{name}");
        }
    }

    #[test]
    fn digest_encodings_are_accepted() {
        let digest = tv_digest();
        let unpadded = digest.trim_end_matches('=').to_string();
        let standard = digest.replace('-', "+").replace('_', "/");
        assert_ne!(standard, digest, "vector should exercise the alphabet difference");
        let cases = [
            ("as sent", format!("alg=RS256; digest={digest}")),
            ("unpadded", format!("alg=RS256; digest={unpadded}")),
            ("standard alphabet", format!("alg=RS256; digest={standard}")),
            (
                "standard unpadded",
                format!("alg=RS256; digest={}", standard.trim_end_matches('=')),
            ),
            ("lowercase alg", format!("alg=rs256; digest={digest}")),
            ("no space", format!("alg=RS256;digest={digest}")),
            ("reordered", format!("digest={digest}; alg=RS256")),
            ("name case", format!("ALG=RS256; Digest={digest}")),
            ("spaces and tabs", format!("  alg = RS256 ;\tdigest= {digest} ")),
            ("trailing semicolon", format!("alg=RS256; digest={digest};")),
            (
                "unknown attributes",
                format!("keyid=abc; alg=RS256; x; digest={digest}; v=2"),
            ),
        ];
        let keys = vec![tv_key()];
        let body = tv_body();
        for (name, header) in cases {
            verify_content_signature(&keys, &body, Some(&header)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn malformed_headers_are_rejected() {
        use SignatureError::*;
        let d = tv_digest();
        let cases: Vec<(&str, String, SignatureError)> = vec![
            ("empty", String::new(), EmptyHeader),
            ("blank", "  ".into(), EmptyHeader),
            ("alg HS256", format!("alg=HS256; digest={d}"), UnsupportedAlg),
            ("alg RS512", format!("alg=RS256x; digest={d}"), UnsupportedAlg),
            ("alg Rs256", format!("alg=Rs256; digest={d}"), UnsupportedAlg),
            ("alg empty", format!("alg=; digest={d}"), UnsupportedAlg),
            ("alg bare", format!("alg; digest={d}"), UnsupportedAlg),
            ("no alg", format!("digest={d}"), MissingAlg),
            ("two algs", format!("alg=RS256; alg=RS256; digest={d}"), DuplicateAlg),
            ("no digest", "alg=RS256".into(), MissingDigest),
            (
                "two digests",
                format!("alg=RS256; digest={d}; digest={d}"),
                DuplicateDigest,
            ),
            ("empty digest", "alg=RS256; digest=".into(), EmptyDigest),
            ("padding only", "alg=RS256; digest===".into(), DigestNotBase64),
            (
                "garbage base64",
                "alg=RS256; digest=%%%not*base64%%%".into(),
                DigestNotBase64,
            ),
            ("mixed alphabets", "alg=RS256; digest=ab-_cd+/".into(), DigestNotBase64),
            ("quoted digest", format!("alg=RS256; digest=\"{d}\""), DigestNotBase64),
            ("comma separated", format!("alg=RS256, digest={d}"), UnsupportedAlg),
        ];
        for (name, header, want) in cases {
            assert_eq!(parse_content_signature(&header), Err(want), "{name}");
        }
    }

    #[test]
    fn tampering_and_wrong_keys_fail() {
        use SignatureError::*;
        let body = tv_body();
        let header = tv_header();
        let keys = vec![tv_key()];
        let other = vec![parse_public_key(&test_pair().1).unwrap()];

        let mut one_byte = body.clone();
        one_byte[10] ^= 0x01;
        let mut newline = body.clone();
        newline.push(b'\n');
        let reserialized =
            serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
        let mut sig = parse_content_signature(&header).unwrap();
        let truncated = sig[..255].to_vec();
        sig[0] ^= 0x80;
        let flipped_sig = sig;

        /// (name, keys, body, signature override, expected error)
        type Case<'a> = (&'a str, &'a [SourceKey], Vec<u8>, Option<Vec<u8>>, SignatureError);
        let cases: Vec<Case> = vec![
            ("one byte changed", &keys, one_byte, None, NotVerified),
            ("trailing newline", &keys, newline, None, NotVerified),
            ("re-serialized", &keys, reserialized, None, NotVerified),
            ("wrong key", &other, body.clone(), None, NotVerified),
            (
                "flipped signature bit",
                &keys,
                body.clone(),
                Some(flipped_sig),
                NotVerified,
            ),
            (
                "truncated signature",
                &keys,
                body.clone(),
                Some(truncated),
                WrongLength { got: 255 },
            ),
            ("no keys", &[], body.clone(), None, NoKeys),
        ];
        for (name, keys, body, sig, want) in cases {
            let sig = sig.unwrap_or_else(|| parse_content_signature(&header).unwrap());
            let got = verify(keys, &body, &sig).map(|k| k.id.clone());
            assert_eq!(got, Err(want.clone()), "{name}");
            assert_eq!(want.cause(), "signature_invalid", "{name}");
        }
        assert_eq!(
            verify_content_signature(&keys, &body, None).map(|k| k.id.clone()),
            Err(Missing)
        );
        assert_eq!(Missing.cause(), "signature_missing");
    }

    #[test]
    fn the_key_that_verified_is_returned() {
        let wrong = parse_public_key(&test_pair().1).unwrap();
        let right = tv_key();
        let keys = vec![wrong, right.clone()];
        let used = verify_content_signature(&keys, &tv_body(), Some(&tv_header())).unwrap();
        assert_eq!(used.id, right.id);
    }

    #[test]
    fn generate_sign_verify_round_trip() {
        let (private_pem, public_pem) = test_pair();
        assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = parse_public_key(public_pem).unwrap();
        assert_eq!(key.bits, 2048);

        let signer = BodySigner::from_pem(private_pem).unwrap();
        assert!(
            format!("{signer:?}").contains("ring"),
            "ring should accept rsa's PKCS#8"
        );
        let body = "{\"eventID\":1,\"product\":\"Заказ\"}".as_bytes();
        let header = sign_body(private_pem, body).unwrap();
        assert_eq!(
            header,
            signer.sign_header(body).unwrap(),
            "PKCS#1 v1.5 is deterministic"
        );
        // Exactly the platform's shape: 344 URL-safe characters ending in `==`.
        let digest = header.strip_prefix("alg=RS256; digest=").unwrap();
        assert_eq!(digest.len(), 344);
        assert!(digest.ends_with("=="));
        assert!(!digest.contains(['+', '/']));

        let keys = vec![key];
        verify_content_signature(&keys, body, Some(&header)).unwrap();
        assert_eq!(
            verify_content_signature(&keys, b"{\"eventID\":2}", Some(&header)).map(|_| ()),
            Err(SignatureError::NotVerified)
        );
        // Private key with literal `\n` (env var) signs identically.
        assert_eq!(sign_body(&private_pem.replace('\n', "\\n"), body).unwrap(), header);
        assert!(matches!(sign_body(public_pem, body), Err(KeyError::PrivateKey)));
    }

    #[test]
    fn legacy_1024_bit_keys_verify() {
        // Old parties may still hold 1024-bit keys (B2.2); `ring`'s legacy algorithm handles
        // them and signing falls back to the `rsa` crate.
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pkcs1_pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
        let signer = BodySigner::from_pem(&pkcs1_pem).unwrap();
        assert!(format!("{signer:?}").contains("rsa"));
        let public_b64 = {
            use rsa::pkcs1::EncodeRsaPublicKey;
            base64::engine::general_purpose::STANDARD.encode(private.to_public_key().to_pkcs1_der().unwrap().as_bytes())
        };
        let key = parse_public_key(&public_b64).unwrap();
        assert_eq!((key.bits, key.modulus_len()), (1024, 128));
        let body = br#"{"eventID":7}"#;
        let header = signer.sign_header(body).unwrap();
        assert!(header.ends_with('=') && !header.ends_with("=="));
        let keys = vec![key, tv_key()];
        verify_content_signature(&keys, body, Some(&header)).unwrap();
        // A 2048-bit signature against only the 1024-bit key: length mismatch, no RSA work.
        assert_eq!(
            verify_content_signature(&keys[..1], &tv_body(), Some(&tv_header())).map(|_| ()),
            Err(SignatureError::WrongLength { got: 256 })
        );
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            SignatureError::UnsupportedAlg.to_string(),
            "unsupported alg in Content-Signature (only RS256)"
        );
        assert_eq!(
            SignatureError::DigestNotBase64.to_string(),
            "Content-Signature digest is not base64"
        );
        assert_eq!(
            SignatureError::NotVerified.to_string(),
            "signature does not verify with any key of source"
        );
    }
}
