//! The two names that tie a payment to money on an account: the biller's account number and the
//! currency code. Each is checked once, where it enters (the EBPP parser, the accounts file, an
//! Empayre event, the admin API), and then travels as its own type through the ledger, the use
//! cases and the storage interface, so nothing past the edge needs to re-check it, and an account
//! number cannot be passed where a currency (or any other string) is expected.
//!
//! Both read as `&str` (`Deref`, `AsRef`, `Borrow`), so formatting, key encoding and comparisons
//! with literals stay as they were; only building one needs the check. Their serde form is the
//! plain string, validated on the way in, so stored JSON and wire answers are unchanged.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::domain::money;

/// Longest account number EBPP and the accounts file allow.
pub const ACCOUNT_NUMBER_MAX_LEN: usize = 100;

/// Why a string is not an account number or a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must be 1-100 characters of [a-zA-Z0-9-_/!@#$%&*{{}}. ']")]
    AccountNumber,
    #[error("must be three capital letters (ISO 4217)")]
    Currency,
}

/// A biller account number: 1–100 characters of `[a-zA-Z0-9-_/!@#$%&*{}. ']`, the EBPP
/// `account_number` pattern, which the accounts file uses too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountNumber(String);

impl AccountNumber {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        Self::try_from(s.to_owned())
    }

    /// Whether `s` has the shape of an account number.
    pub fn is_valid(s: &str) -> bool {
        s.len() <= ACCOUNT_NUMBER_MAX_LEN
            && !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(
                        c,
                        '-' | '_' | '/' | '!' | '@' | '#' | '$' | '%' | '&' | '*' | '{' | '}' | '.' | ' ' | '\''
                    )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for AccountNumber {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        if Self::is_valid(&s) {
            Ok(Self(s))
        } else {
            Err(NameError::AccountNumber)
        }
    }
}

/// An ISO 4217 alphabetic currency code: three capital letters, the shape both channels put on
/// the wire (EBPP `currency_code3d`, Empayre `currency`). Whether the code has a minor-unit
/// exponent (is one an account can be held in) is [`Currency::exponent`]: an Empayre payment in
/// an unknown code is still recorded, it just cannot match an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 4217 minor-unit exponent (`USD` 2, `JPY` 0), None for a code without one.
    pub fn exponent(&self) -> Option<u32> {
        money::currency_exponent(&self.0)
    }
}

impl TryFrom<String> for Currency {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s))
        } else {
            Err(NameError::Currency)
        }
    }
}

/// The string views and comparisons both names share.
macro_rules! reads_as_str {
    ($name:ident) => {
        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

reads_as_str!(AccountNumber);
reads_as_str!(Currency);

/// Unit tests write their names as literals (`"A".into()`); a bad literal is a bug in the test.
#[cfg(test)]
mod literals {
    use super::{AccountNumber, Currency};

    impl From<&str> for AccountNumber {
        fn from(s: &str) -> Self {
            Self::parse(s).expect("a test's account number literal")
        }
    }

    impl From<&str> for Currency {
        fn from(s: &str) -> Self {
            Self::parse(s).expect("a test's currency literal")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_numbers_are_checked_once_where_they_enter() {
        for good in ["A", "ACC-1", "a/b_c!@#$%&*{}. '", &"9".repeat(100)] {
            assert_eq!(AccountNumber::parse(good).map(|n| n.to_string()), Ok(good.to_string()));
        }
        for bad in ["", "A\u{e9}", "A\n", "A;B", &"9".repeat(101)] {
            assert_eq!(AccountNumber::parse(bad), Err(NameError::AccountNumber), "{bad:?}");
        }
    }

    #[test]
    fn currencies_are_three_capital_letters_with_or_without_an_exponent() {
        assert_eq!(Currency::parse("USD").map(|c| c.exponent()), Ok(Some(2)));
        assert_eq!(Currency::parse("JPY").map(|c| c.exponent()), Ok(Some(0)));
        assert_eq!(Currency::parse("XYZ").map(|c| c.exponent()), Ok(None));
        for bad in ["", "usd", "US", "USDT", "U1D", "ÜSD"] {
            assert_eq!(Currency::parse(bad), Err(NameError::Currency), "{bad:?}");
        }
    }

    #[test]
    fn the_serde_form_is_the_plain_string_and_is_checked() {
        let n: AccountNumber = serde_json::from_str("\"A-1\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"A-1\"");
        assert!(serde_json::from_str::<AccountNumber>("\"\"").is_err());
        let c: Currency = serde_json::from_str("\"EUR\"").unwrap();
        assert_eq!(c, "EUR");
        assert!(serde_json::from_str::<Currency>("\"eur\"").is_err());
    }
}
