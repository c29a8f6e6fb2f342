//! The stored form of accounts and profiles: a compact binary layout instead of JSON.
//!
//! Why: at 1,000,000 accounts the accounts and profiles trees are most of what a lookup or a
//! posting reads, and sled caches, reads and rewrites them a whole leaf (up to 16 entries) at
//! a time. As JSON an account was about 520 bytes, mostly field names and `null`s; here it is
//! about 80. Smaller leaves mean more of them fit in `cache_capacity_bytes`, and fewer bytes
//! copied each time a posting rewrites an account's leaf.
//!
//! Layout: a version byte, then the fields in declaration order. Strings and lists carry a
//! LEB128 length; an `Option` is a presence byte (0 absent, 1 present) before the value; a
//! decimal is one byte of scale (with 0x80 for a negative sign) and its mantissa as LEB128, so
//! it comes back bit for bit (scale included, which the amount format depends on); statuses
//! are their names, so reordering the enums cannot change what stored bytes mean.
//!
//! Stores written before this layout hold JSON values. JSON always begins with `{`, which no
//! version byte uses, so both are read; every write uses the compact layout.

use rust_decimal::Decimal;

use super::StoreError;
use crate::domain::account::{Account, AccountStatus, Address, Profile, ProfileStatus};

/// Version byte of the first compact account layout.
const ACCOUNT_V1: u8 = 0xA1;
/// Version byte of the first compact profile layout.
const PROFILE_V1: u8 = 0xB1;
/// The first byte of every legacy (JSON) value.
const JSON_OBJECT: u8 = b'{';

/// rust_decimal holds at most 28 decimal places and a 96-bit mantissa.
const MAX_SCALE: u8 = 28;
const NEGATIVE: u8 = 0x80;

pub(crate) fn encode_account(a: &Account) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(96));
    w.0.push(ACCOUNT_V1);
    w.str(&a.account_number);
    w.opt_str(a.customer_account_reference.as_deref());
    w.opt_str(a.account_holder_name.as_deref());
    w.opt_str(a.nickname.as_deref());
    w.str(a.status.as_str());
    w.str(&a.currency);
    w.opt_str(a.warning.as_deref());
    w.decimal(a.opening_balance);
    w.decimal(a.posted_delta);
    w.opt_decimal(a.current_statement_balance);
    w.opt_decimal(a.minimum_payment_due);
    w.opt_decimal(a.past_amount_due);
    w.opt_str(a.payment_due_date.as_deref());
    w.opt_str(a.statement_date.as_deref());
    w.opt_decimal(a.payoff_amount);
    w.opt_str(a.payoff_expiry_date.as_deref());
    w.opt_decimal(a.min_payment_amount);
    w.opt_decimal(a.max_payment_amount);
    w.address(a.address.as_ref());
    w.strs(&a.customer_references);
    match a.last_journal_commit {
        None => w.0.push(0),
        Some(commit) => {
            w.0.push(1);
            w.uint(u128::from(commit));
        }
    }
    w.0
}

pub(crate) fn decode_account(bytes: &[u8]) -> Result<Account, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&ACCOUNT_V1) => {
            let mut r = Reader { bytes, at: 1 };
            let account = Account {
                account_number: r.string()?,
                customer_account_reference: r.opt_string()?,
                account_holder_name: r.opt_string()?,
                nickname: r.opt_string()?,
                status: {
                    let name = r.str()?;
                    AccountStatus::parse(name).ok_or_else(|| corrupt("unknown account status"))?
                },
                currency: r.string()?,
                warning: r.opt_string()?,
                opening_balance: r.decimal()?,
                posted_delta: r.decimal()?,
                current_statement_balance: r.opt_decimal()?,
                minimum_payment_due: r.opt_decimal()?,
                past_amount_due: r.opt_decimal()?,
                payment_due_date: r.opt_string()?,
                statement_date: r.opt_string()?,
                payoff_amount: r.opt_decimal()?,
                payoff_expiry_date: r.opt_string()?,
                min_payment_amount: r.opt_decimal()?,
                max_payment_amount: r.opt_decimal()?,
                address: r.address()?,
                customer_references: r.strings()?,
                last_journal_commit: if r.present()? {
                    Some(u64::try_from(r.uint()?).map_err(|_| corrupt("journal commit out of range"))?)
                } else {
                    None
                },
            };
            r.finish(account)
        }
        _ => Err(corrupt("unknown account encoding")),
    }
}

pub(crate) fn encode_profile(p: &Profile) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(96));
    w.0.push(PROFILE_V1);
    w.str(&p.customer_reference);
    w.opt_str(p.lookup_reference.as_deref());
    w.opt_str(p.first_name.as_deref());
    w.opt_str(p.last_name.as_deref());
    w.opt_str(p.email.as_deref());
    w.opt_str(p.ssn_sha256.as_deref());
    w.opt_str(p.home_phone.as_deref());
    w.str(p.status.as_str());
    w.opt_str(p.warning.as_deref());
    w.address(p.address.as_ref());
    w.strs(&p.account_numbers);
    w.0
}

pub(crate) fn decode_profile(bytes: &[u8]) -> Result<Profile, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&PROFILE_V1) => {
            let mut r = Reader { bytes, at: 1 };
            let profile = Profile {
                customer_reference: r.string()?,
                lookup_reference: r.opt_string()?,
                first_name: r.opt_string()?,
                last_name: r.opt_string()?,
                email: r.opt_string()?,
                ssn_sha256: r.opt_string()?,
                home_phone: r.opt_string()?,
                status: {
                    let name = r.str()?;
                    ProfileStatus::parse(name).ok_or_else(|| corrupt("unknown profile status"))?
                },
                warning: r.opt_string()?,
                address: r.address()?,
                account_numbers: r.strings()?,
            };
            r.finish(profile)
        }
        _ => Err(corrupt("unknown profile encoding")),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, mut n: u128) {
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u128);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    fn strs(&mut self, items: &[String]) {
        self.uint(items.len() as u128);
        for s in items {
            self.str(s);
        }
    }

    fn decimal(&mut self, d: Decimal) {
        // scale() is at most 28, so it never collides with the sign bit.
        let sign = if d.is_sign_negative() { NEGATIVE } else { 0 };
        self.0.push(d.scale() as u8 | sign);
        self.uint(d.mantissa().unsigned_abs());
    }

    fn opt_decimal(&mut self, d: Option<Decimal>) {
        match d {
            None => self.0.push(0),
            Some(d) => {
                self.0.push(1);
                self.decimal(d);
            }
        }
    }

    /// The address is free-form JSON as EBPP sent it; it stays JSON inside the value.
    fn address(&mut self, address: Option<&Address>) {
        match address {
            None => self.0.push(0),
            Some(map) => {
                self.0.push(1);
                // A map of JSON values always serializes.
                let text = serde_json::Value::Object(map.clone()).to_string();
                self.str(&text);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| corrupt("truncated stored value"))?;
        self.at += 1;
        Ok(b)
    }

    fn uint(&mut self) -> Result<u128, StoreError> {
        let mut n: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let part = u128::from(b & 0x7f);
            // The 19th group may carry only the top 2 bits of a u128.
            if shift >= 128 || (shift == 126 && part > 3) {
                return Err(corrupt("integer too large in stored value"));
            }
            n |= part << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
            shift += 7;
        }
    }

    fn len(&mut self) -> Result<usize, StoreError> {
        let n = usize::try_from(self.uint()?).map_err(|_| corrupt("length out of range"))?;
        if n > self.bytes.len() - self.at {
            return Err(corrupt("truncated stored value"));
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<&'a str, StoreError> {
        let n = self.len()?;
        let raw = &self.bytes[self.at..self.at + n];
        self.at += n;
        std::str::from_utf8(raw).map_err(|_| corrupt("stored text is not UTF-8"))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        self.str().map(str::to_owned)
    }

    fn present(&mut self) -> Result<bool, StoreError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("bad presence byte in stored value")),
        }
    }

    fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        if self.present()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    fn strings(&mut self) -> Result<Vec<String>, StoreError> {
        let count = self.len()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.string()?);
        }
        Ok(out)
    }

    fn decimal(&mut self) -> Result<Decimal, StoreError> {
        let head = self.byte()?;
        let scale = head & !NEGATIVE;
        if scale > MAX_SCALE {
            return Err(corrupt("decimal scale out of range"));
        }
        let mantissa = self.uint()?;
        if mantissa >> 96 != 0 {
            return Err(corrupt("decimal mantissa out of range"));
        }
        Ok(Decimal::from_parts(
            mantissa as u32,
            (mantissa >> 32) as u32,
            (mantissa >> 64) as u32,
            head & NEGATIVE != 0,
            u32::from(scale),
        ))
    }

    fn opt_decimal(&mut self) -> Result<Option<Decimal>, StoreError> {
        if self.present()? {
            self.decimal().map(Some)
        } else {
            Ok(None)
        }
    }

    fn address(&mut self) -> Result<Option<Address>, StoreError> {
        if !self.present()? {
            return Ok(None);
        }
        let text = self.str()?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("stored address: {e}")))
    }

    /// Trailing bytes mean the value is not what this layout wrote.
    fn finish<T>(self, value: T) -> Result<T, StoreError> {
        if self.at == self.bytes.len() {
            Ok(value)
        } else {
            Err(corrupt("trailing bytes after a stored value"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn bare_account() -> Account {
        Account {
            account_number: "A-1".into(),
            customer_account_reference: None,
            account_holder_name: None,
            nickname: None,
            status: AccountStatus::Active,
            currency: "USD".into(),
            warning: None,
            opening_balance: Decimal::ZERO,
            posted_delta: Decimal::ZERO,
            current_statement_balance: None,
            minimum_payment_due: None,
            past_amount_due: None,
            payment_due_date: None,
            statement_date: None,
            payoff_amount: None,
            payoff_expiry_date: None,
            min_payment_amount: None,
            max_payment_amount: None,
            address: None,
            customer_references: Vec::new(),
            last_journal_commit: None,
        }
    }

    fn full_account() -> Account {
        let address = serde_json::json!({"line1": "1 Main St", "city": "Zürich", "extra": {"floor": 3, "ok": true}});
        Account {
            account_number: "ACC-ÄÖ-0001".into(),
            customer_account_reference: Some("car-9".into()),
            account_holder_name: Some("Holder".into()),
            nickname: Some(String::new()),
            status: AccountStatus::Inbankruptcy,
            currency: "JPY".into(),
            warning: Some("see notes".into()),
            opening_balance: dec("1000000.00"),
            posted_delta: dec("-12.30"),
            // A negative zero, which a decimal can hold: the sign must survive too.
            current_statement_balance: Some(Decimal::from_parts(0, 0, 0, true, 2)),
            minimum_payment_due: Some(dec("79228162514264337593543950335")),
            past_amount_due: Some(dec("-7.9228162514264337593543950335")),
            payment_due_date: Some("2026-12-10".into()),
            statement_date: Some("2026-11-10".into()),
            payoff_amount: Some(dec("0.0000000000000000000000000001")),
            payoff_expiry_date: Some("2027-01-01".into()),
            min_payment_amount: Some(dec("1")),
            max_payment_amount: Some(dec("250.5")),
            address: address.as_object().cloned(),
            customer_references: vec!["C-1".into(), "C-2".into()],
            last_journal_commit: Some(u64::MAX),
        }
    }

    fn bare_profile() -> Profile {
        Profile {
            customer_reference: "C-1".into(),
            lookup_reference: None,
            first_name: None,
            last_name: None,
            email: None,
            ssn_sha256: None,
            home_phone: None,
            status: ProfileStatus::Active,
            warning: None,
            address: None,
            account_numbers: Vec::new(),
        }
    }

    fn full_profile() -> Profile {
        Profile {
            customer_reference: "C-ß".into(),
            lookup_reference: Some("L-7".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            email: Some("ada@example.com".into()),
            ssn_sha256: Some(crate::domain::account::ssn_digest("123456789")),
            home_phone: Some("+1 555 0100".into()),
            status: ProfileStatus::Revoked,
            warning: Some("fraud review".into()),
            address: serde_json::json!({"zip": "10001"}).as_object().cloned(),
            account_numbers: vec!["A-1".into(), "A-2".into(), "A-3".into()],
        }
    }

    /// Decimals must come back bit for bit: the scale decides how an amount is printed.
    fn same_decimals(a: &Account, b: &Account) {
        let pairs = [
            (Some(a.opening_balance), Some(b.opening_balance)),
            (Some(a.posted_delta), Some(b.posted_delta)),
            (a.current_statement_balance, b.current_statement_balance),
            (a.minimum_payment_due, b.minimum_payment_due),
            (a.past_amount_due, b.past_amount_due),
            (a.payoff_amount, b.payoff_amount),
            (a.min_payment_amount, b.min_payment_amount),
            (a.max_payment_amount, b.max_payment_amount),
        ];
        for (x, y) in pairs {
            assert_eq!(x.map(|d| d.serialize()), y.map(|d| d.serialize()));
        }
    }

    #[test]
    fn accounts_read_back_as_written() {
        for account in [bare_account(), full_account()] {
            let back = decode_account(&encode_account(&account)).expect("decodes");
            assert_eq!(back, account);
            same_decimals(&back, &account);
        }
    }

    #[test]
    fn profiles_read_back_as_written() {
        for profile in [bare_profile(), full_profile()] {
            assert_eq!(decode_profile(&encode_profile(&profile)).expect("decodes"), profile);
        }
    }

    #[test]
    fn json_values_of_older_stores_still_read() {
        for account in [bare_account(), full_account()] {
            let json = serde_json::to_vec(&account).expect("json");
            let back = decode_account(&json).expect("decodes");
            assert_eq!(back, account);
            same_decimals(&back, &account);
        }
        for profile in [bare_profile(), full_profile()] {
            let json = serde_json::to_vec(&profile).expect("json");
            assert_eq!(decode_profile(&json).expect("decodes"), profile);
        }
    }

    #[test]
    fn the_compact_form_is_a_fraction_of_the_json() {
        let mut account = bare_account();
        account.account_number = "ACC-00000001".into();
        account.account_holder_name = Some("Holder 1".into());
        account.opening_balance = dec("1000000.00");
        account.minimum_payment_due = Some(dec("25.00"));
        account.payment_due_date = Some("2026-12-10".into());
        account.customer_references = vec!["C-00000001".into()];
        account.last_journal_commit = Some(1_234_567);
        let compact = encode_account(&account).len();
        let json = serde_json::to_vec(&account).expect("json").len();
        assert!(compact * 5 < json, "compact {compact} bytes, JSON {json} bytes");
    }

    #[test]
    fn damaged_values_are_corrupt_never_a_panic() {
        let account = encode_account(&full_account());
        let profile = encode_profile(&full_profile());
        // Every proper prefix is truncated somewhere.
        for cut in 0..account.len() {
            assert!(decode_account(&account[..cut]).is_err(), "account cut at {cut}");
        }
        for cut in 0..profile.len() {
            assert!(decode_profile(&profile[..cut]).is_err(), "profile cut at {cut}");
        }
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("unknown version", [&[0xA2u8][..], &account[1..]].concat()),
            ("trailing byte", [&account[..], &[0][..]].concat()),
            ("profile bytes read as an account", profile.clone()),
        ];
        // A bad presence byte: the customer_account_reference flag follows the number.
        let mut bad_flag = encode_account(&bare_account());
        let flag_at = 1 + 1 + "A-1".len();
        bad_flag[flag_at] = 7;
        cases.push(("presence byte 7", bad_flag));
        // A decimal scale beyond 28, and a mantissa beyond 96 bits.
        let encoded = encode_account(&bare_account());
        // version, "A-1", three absent names, "active", "USD", absent warning.
        let opening_at = 1 + (1 + 3) + 3 + (1 + 6) + (1 + 3) + 1;
        assert_eq!(
            &encoded[opening_at..opening_at + 4],
            &[0, 0, 0, 0],
            "layout of the bare account"
        );
        let mut bad_scale = encoded.clone();
        bad_scale[opening_at] = 29;
        cases.push(("scale 29", bad_scale));
        let mut huge = encoded[..opening_at].to_vec();
        huge.push(0);
        huge.extend_from_slice(&[0xff; 14]);
        huge.push(0x01);
        huge.extend_from_slice(&encoded[opening_at + 2..]);
        cases.push(("mantissa over 96 bits", huge));
        let mut bad_utf8 = encode_account(&bare_account());
        bad_utf8[2] = 0xff;
        cases.push(("number not UTF-8", bad_utf8));
        for (what, bytes) in cases {
            assert!(decode_account(&bytes).is_err(), "{what}");
        }
        let mut bad_status = encode_profile(&bare_profile());
        let status_at = 1 + 1 + "C-1".len() + 6;
        assert_eq!(
            bad_status[status_at],
            "active".len() as u8,
            "layout of the bare profile"
        );
        bad_status[status_at + 1] = b'X';
        assert!(decode_profile(&bad_status).is_err(), "unknown status");
        assert!(decode_profile(&account).is_err(), "account bytes read as a profile");
    }
}
