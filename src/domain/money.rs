//! Money: ISO 4217 minor-unit exponents, decimal parsing and formatting.
//!
//! Every amount in biller-inbox is a `rust_decimal::Decimal` (or an integer count of minor units
//! at the edges, e.g. Empayre); never a float, so that `110.05 - 101.05` is exactly `9.00`.
//! Both channels put amounts on the wire as strings, and answers must carry exactly the
//! currency's number of decimals (docs/orbipay.md: two for USD and EUR, none for JPY), so
//! the exponent table and the formatter live here, in one place.

use rust_decimal::{Decimal, RoundingStrategy};

/// Integer digits the EBPP amount pattern `^[0-9]{1,14}(\.[0-9]{1,2})?$` allows.
const MAX_INTEGER_DIGITS: usize = 14;

/// The ISO 4217 minor-unit exponent of an alphabetic currency code (`"USD"` → 2, `"JPY"` → 0,
/// `"KWD"` → 3), or `None` when the code is not a currency one can hold an account in.
///
/// The table is ISO 4217 list one as published for 2026, plus a few codes withdrawn in the last
/// years (ANG, BGN, CUC, HRK, SLL, ZWL) because imported accounts may still carry them. Codes
/// whose minor unit ISO gives as "N.A." (precious metals XAU/XAG/XPD/XPT, the bond-market units
/// XBA–XBD, XDR, XSU, XUA, and the XTS/XXX test and no-currency codes) have no exponent at all
/// and answer `None`: an amount in them cannot be formatted. Lookup is case-sensitive, as the
/// wire pattern `[A-Z]{3}` is.
pub fn currency_exponent(code: &str) -> Option<u32> {
    match code {
        // No minor unit.
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
        | "VUV" | "XAF" | "XOF" | "XPF" => Some(0),
        // Thousandths (fils, baisa, millime, dirham).
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => Some(3),
        // Index units quoted to four places.
        "CLF" | "UYW" => Some(4),
        // Everything else in use has cents.
        "AED" | "AFN" | "ALL" | "AMD" | "AOA" | "ARS" | "AUD" | "AWG" | "AZN" | "BAM" | "BBD" | "BDT" | "BMD"
        | "BND" | "BOB" | "BOV" | "BRL" | "BSD" | "BTN" | "BWP" | "BYN" | "BZD" | "CAD" | "CDF" | "CHE" | "CHF"
        | "CHW" | "CNY" | "COP" | "COU" | "CRC" | "CUP" | "CVE" | "CZK" | "DKK" | "DOP" | "DZD" | "EGP" | "ERN"
        | "ETB" | "EUR" | "FJD" | "FKP" | "GBP" | "GEL" | "GHS" | "GIP" | "GMD" | "GTQ" | "GYD" | "HKD" | "HNL"
        | "HTG" | "HUF" | "IDR" | "ILS" | "INR" | "IRR" | "JMD" | "KES" | "KGS" | "KHR" | "KPW" | "KYD" | "KZT"
        | "LAK" | "LBP" | "LKR" | "LRD" | "LSL" | "MAD" | "MDL" | "MGA" | "MKD" | "MMK" | "MNT" | "MOP" | "MRU"
        | "MUR" | "MVR" | "MWK" | "MXN" | "MXV" | "MYR" | "MZN" | "NAD" | "NGN" | "NIO" | "NOK" | "NPR" | "NZD"
        | "PAB" | "PEN" | "PGK" | "PHP" | "PKR" | "PLN" | "QAR" | "RON" | "RSD" | "RUB" | "SAR" | "SBD" | "SCR"
        | "SDG" | "SEK" | "SGD" | "SHP" | "SLE" | "SOS" | "SRD" | "SSP" | "STN" | "SVC" | "SYP" | "SZL" | "THB"
        | "TJS" | "TMT" | "TOP" | "TRY" | "TTD" | "TWD" | "TZS" | "UAH" | "USD" | "USN" | "UYU" | "UZS" | "VED"
        | "VES" | "WST" | "XAD" | "XCD" | "XCG" | "YER" | "ZAR" | "ZMW" | "ZWG" => Some(2),
        // Recently withdrawn, kept so that old accounts still format.
        "ANG" | "BGN" | "CUC" | "HRK" | "SLL" | "ZWL" => Some(2),
        _ => None,
    }
}

/// `amount` with exactly `exponent` decimals: `9` → `"9.00"`, `-1.5` → `"-1.50"`, JPY `100` →
/// `"100"`.
///
/// Extra decimals (which validated input never has) are rounded half away from zero, the
/// commercial rule, rather than `Decimal`'s default banker's rounding. A zero never prints as
/// `-0.00`. Exponents above 28, `Decimal`'s maximum scale, are treated as 28.
pub fn format_amount(amount: Decimal, exponent: u32) -> String {
    let exponent = exponent.min(Decimal::MAX_SCALE);
    let mut value = amount.round_dp_with_strategy(exponent, RoundingStrategy::MidpointAwayFromZero);
    // `round_dp` only ever lowers the scale; `rescale` raises it so `9` prints as `9.00`.
    value.rescale(exponent);
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    value.to_string()
}

/// An integer count of minor units as a decimal amount: `150000` RUB (exponent 2) → `1500.00`,
/// `1500` JPY → `1500`, `1234` KWD → `1.234`. Exponents above 28 are treated as 28.
pub fn minor_to_decimal(minor: i64, exponent: u32) -> Decimal {
    Decimal::new(minor, exponent.min(Decimal::MAX_SCALE))
}

/// The inverse of [`minor_to_decimal`]: `1500.00` at exponent 2 → `150000`. `None` when the
/// amount has more decimals than the currency allows (it is not a whole number of minor units)
/// or does not fit in an `i64`.
pub fn decimal_to_minor(amount: Decimal, exponent: u32) -> Option<i64> {
    let exponent = exponent.min(Decimal::MAX_SCALE);
    let mut scaled = amount.normalize();
    if scaled.scale() > exponent {
        return None;
    }
    scaled.rescale(exponent);
    // After the rescale the mantissa is the count of minor units; `rescale` cannot grow past
    // 96 bits silently, so check the result really has the scale asked for.
    if scaled.scale() != exponent {
        return None;
    }
    i64::try_from(scaled.mantissa()).ok()
}

/// Parses an EBPP amount: `^[0-9]{1,14}(\.[0-9]{1,2})?$`, i.e. non-negative, at most 14 integer
/// digits and at most two decimals, no sign, exponent or spaces. The scale is kept as written
/// (`"10.5"` has scale 1; `Decimal` compares by value, and [`format_amount`] fixes the decimals
/// on the way out).
pub fn parse_amount(s: &str) -> Option<Decimal> {
    parse_amount_scaled(s, 2)
}

/// Like [`parse_amount`] but allowing up to `max_decimals` decimals: for amounts in a currency
/// with exponent 3 or 4, e.g. an imported KWD balance `"1.234"`. With `max_decimals` 0 only whole
/// numbers pass. Still no sign, at most 14 integer digits.
pub fn parse_amount_scaled(s: &str, max_decimals: u32) -> Option<Decimal> {
    let (integer, fraction) = match s.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (s, None),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if integer.is_empty() || integer.len() > MAX_INTEGER_DIGITS || !all_digits(integer) {
        return None;
    }
    if let Some(fraction) = fraction {
        let max = max_decimals.min(Decimal::MAX_SCALE) as usize;
        if fraction.is_empty() || fraction.len() > max || !all_digits(fraction) {
            return None;
        }
    }
    // The shape is checked, so this cannot fail or round; `from_str_exact` refuses to round
    // anyway, which keeps the "no silent precision loss" promise if the checks above change.
    Decimal::from_str_exact(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("test decimal")
    }

    #[test]
    fn exponent_table_spot_checks() {
        let cases = [
            ("USD", Some(2)),
            ("EUR", Some(2)),
            ("GBP", Some(2)),
            ("RUB", Some(2)),
            ("JPY", Some(0)),
            ("KRW", Some(0)),
            ("VND", Some(0)),
            ("CLP", Some(0)),
            ("ISK", Some(0)),
            ("XAF", Some(0)),
            ("XOF", Some(0)),
            ("XPF", Some(0)),
            ("UGX", Some(0)),
            ("KWD", Some(3)),
            ("BHD", Some(3)),
            ("OMR", Some(3)),
            ("JOD", Some(3)),
            ("TND", Some(3)),
            ("LYD", Some(3)),
            ("IQD", Some(3)),
            ("CLF", Some(4)),
            ("UYW", Some(4)),
            ("XCG", Some(2)),
            ("ZWG", Some(2)),
            ("SLE", Some(2)),
            ("HRK", Some(2)),
            ("XAU", None),
            ("XDR", None),
            ("XXX", None),
            ("XTS", None),
            ("usd", None),
            ("US", None),
            ("USDX", None),
            ("", None),
            ("ZZZ", None),
        ];
        for (code, want) in cases {
            assert_eq!(currency_exponent(code), want, "{code}");
        }
    }

    #[test]
    fn format_amount_pads_and_rounds() {
        let cases = [
            ("9", 2, "9.00"),
            ("-1.5", 2, "-1.50"),
            ("100", 0, "100"),
            ("110.05", 2, "110.05"),
            ("0", 2, "0.00"),
            ("1.234", 3, "1.234"),
            ("1.2", 4, "1.2000"),
            ("1.005", 2, "1.01"),
            ("-1.005", 2, "-1.01"),
            ("1.004", 2, "1.00"),
            ("2.5", 0, "3"),
            ("-2.5", 0, "-3"),
            ("-0.001", 2, "0.00"),
            ("99999999999999.99", 2, "99999999999999.99"),
        ];
        for (input, exponent, want) in cases {
            assert_eq!(format_amount(dec(input), exponent), want, "{input} at {exponent}");
        }
    }

    #[test]
    fn minor_units_round_trip() {
        assert_eq!(minor_to_decimal(150_000, 2).to_string(), "1500.00");
        assert_eq!(minor_to_decimal(1500, 0).to_string(), "1500");
        assert_eq!(minor_to_decimal(1234, 3).to_string(), "1.234");
        assert_eq!(minor_to_decimal(-5, 2).to_string(), "-0.05");
        assert_eq!(decimal_to_minor(dec("1500.00"), 2), Some(150_000));
        assert_eq!(decimal_to_minor(dec("1500"), 2), Some(150_000));
        assert_eq!(decimal_to_minor(dec("1.234"), 3), Some(1234));
        assert_eq!(decimal_to_minor(dec("-0.05"), 2), Some(-5));
        assert_eq!(decimal_to_minor(dec("1.5"), 0), None);
        assert_eq!(decimal_to_minor(dec("1.50"), 0), None);
        assert_eq!(decimal_to_minor(dec("2.000"), 0), Some(2));
        assert_eq!(decimal_to_minor(dec("100000000000000000000"), 2), None);
    }

    #[test]
    fn parse_amount_follows_the_ebpp_pattern() {
        let good = [
            ("0", "0"),
            ("10", "10"),
            ("10.5", "10.5"),
            ("10.05", "10.05"),
            ("0010.50", "10.50"),
            ("99999999999999.99", "99999999999999.99"),
        ];
        for (input, want) in good {
            assert_eq!(parse_amount(input), Some(dec(want)), "{input}");
        }
        let bad = [
            "",
            ".5",
            "10.",
            "10.123",
            "-1",
            "+1",
            "1e3",
            " 1",
            "1 ",
            "1,00",
            "1.2.3",
            "999999999999999",
            "NaN",
            "１",
            "0x10",
        ];
        for input in bad {
            assert_eq!(parse_amount(input), None, "{input:?}");
        }
    }

    #[test]
    fn parse_amount_scaled_allows_more_decimals() {
        assert_eq!(parse_amount_scaled("1.234", 3), Some(dec("1.234")));
        assert_eq!(parse_amount_scaled("1.2345", 3), None);
        assert_eq!(parse_amount_scaled("1.2345", 4), Some(dec("1.2345")));
        assert_eq!(parse_amount_scaled("7", 0), Some(dec("7")));
        assert_eq!(parse_amount_scaled("7.5", 0), None);
        // A bare "1." is never an amount, whatever the exponent.
        assert_eq!(parse_amount_scaled("7.", 0), None);
        assert_eq!(parse_amount_scaled("7.", 4), None);
    }
}
