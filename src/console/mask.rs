//! What the console never shows of a stored body: card numbers (13–19 digits passing the Luhn
//! check, spaces or dashes allowed), CVV/CVC codes, and values of fields named like secrets.
//! The admin API hands bodies to programs as received; a screen is read over shoulders.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

const MASK: &str = "[masked]";

/// Field names whose values are never shown (compared without case, `-` and `_`).
fn sensitive(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        n.as_str(),
        "cvv"
            | "cvv2"
            | "cvc"
            | "cvc2"
            | "cid"
            | "securitycode"
            | "cardsecuritycode"
            | "pan"
            | "cardnumber"
            | "ssn"
            | "password"
            | "passwd"
            | "secret"
            | "clientsecret"
            | "token"
            | "accesstoken"
            | "apikey"
            | "authorization"
            | "privatekey"
    )
}

/// The body with every secret, CVV and card number masked; JSON comes back pretty-printed.
pub fn mask_secrets(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            mask_value(&mut v);
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| MASK.to_string())
        }
        Err(_) => mask_text(text),
    }
}

fn mask_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if sensitive(k) {
                    *item = Value::String(MASK.into());
                } else {
                    mask_value(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        Value::String(s) => *s = mask_card_numbers(s),
        Value::Number(n) => {
            let digits = n.to_string();
            if looks_like_card_number(&digits) {
                *v = Value::String(MASK.into());
            }
        }
        _ => {}
    }
}

/// Text that is not JSON: `name=value` / `name: value` pairs of sensitive names, and card
/// numbers anywhere.
fn mask_text(text: &str) -> String {
    static PAIR: OnceLock<Option<Regex>> = OnceLock::new();
    let pair = PAIR.get_or_init(|| {
        Regex::new(r#"(?i)("?[a-z_\-]*(?:cvv2?|cvc2?|secret|password|passwd|token|api[-_]?key|card[-_]?number|pan|ssn)"?\s*[:=]\s*)("[^"]*"|[^\s,;&}]+)"#).ok()
    });
    let text = match pair {
        Some(re) => re.replace_all(text, format!("${{1}}{MASK}")).into_owned(),
        // The pattern is a constant; if it ever failed to build, show nothing rather than leak.
        None => return MASK.to_string(),
    };
    mask_card_numbers(&text)
}

/// Replaces every run of 13–19 digits (spaces or dashes between them allowed) that passes the
/// Luhn check with its last four digits behind a mask.
pub fn mask_card_numbers(s: &str) -> String {
    static RUN: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = RUN.get_or_init(|| Regex::new(r"\d(?:[ -]?\d){12,18}").ok()) else {
        return MASK.to_string();
    };
    re.replace_all(s, |caps: &regex::Captures<'_>| {
        let digits: String = caps[0].chars().filter(char::is_ascii_digit).collect();
        if looks_like_card_number(&digits) {
            format!("{MASK}{}", &digits[digits.len() - 4..])
        } else {
            caps[0].to_string()
        }
    })
    .into_owned()
}

fn looks_like_card_number(digits: &str) -> bool {
    (13..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && luhn(digits)
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_lose_their_secrets_and_card_numbers() {
        let body = r#"{"payer":{"card":{"cardNumber":"4111111111111111","cvv":"123","lastDigits":"1111"},
            "note":"paid with 4111 1111 1111 1111","api-key":"k-123","amount":10000}}"#;
        let shown = mask_secrets(body);
        for leaked in ["4111111111111111", "4111 1111 1111 1111", "\"123\"", "k-123"] {
            assert!(!shown.contains(leaked), "{leaked} shown in {shown}");
        }
        assert!(shown.contains("\"lastDigits\": \"1111\""), "{shown}");
        assert!(shown.contains("10000"), "plain numbers stay: {shown}");
    }

    #[test]
    fn text_bodies_lose_pairs_and_card_numbers() {
        let shown = mask_text("cvv=123&token=abc&card 5500-0000-0000-0004 order 1234567890123");
        assert!(!shown.contains("123&"), "{shown}");
        assert!(!shown.contains("abc"), "{shown}");
        assert!(!shown.contains("5500-0000-0000-0004"), "{shown}");
        assert!(shown.contains("[masked]0004"), "{shown}");
        // 13 digits failing Luhn: an order number, not a card.
        assert!(shown.contains("1234567890123"), "{shown}");
    }
}
