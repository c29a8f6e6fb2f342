//! The one reader of the byte layouts the sled backend writes: the commit log's entries
//! (`log`, fixed-width big-endian fields) and the compact stored values (`codec`, LEB128
//! integers, length-prefixed text, decimals, times). Every read is bounds-checked: bytes that
//! are not what the layout wrote are `StoreError::Corrupt`, never a panic.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::StoreError;
use crate::domain::account::Address;
use crate::domain::{AccountNumber, Currency};

/// A decimal is stored as one byte of scale, with this bit for a negative sign, then its
/// mantissa (see `codec`). rust_decimal holds at most 28 decimal places and a 96-bit mantissa.
pub(super) const NEGATIVE: u8 = 0x80;
const MAX_SCALE: u8 = 28;

pub(super) struct ByteReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> ByteReader<'a> {
    /// Reads `bytes` from offset `at`.
    pub(super) fn new(bytes: &'a [u8], at: usize) -> Self {
        Self { bytes, at }
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated stored value"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub(super) fn byte(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian u32 (the commit log's fixed-width fields).
    pub(super) fn u32_be(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A big-endian u64.
    pub(super) fn u64_be(&mut self) -> Result<u64, StoreError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    /// An unsigned LEB128 integer (the compact values' integers and lengths).
    pub(super) fn uint(&mut self) -> Result<u128, StoreError> {
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

    pub(super) fn len(&mut self) -> Result<usize, StoreError> {
        let n = usize::try_from(self.uint()?).map_err(|_| corrupt("length out of range"))?;
        if n > self.bytes.len() - self.at {
            return Err(corrupt("truncated stored value"));
        }
        Ok(n)
    }

    pub(super) fn str(&mut self) -> Result<&'a str, StoreError> {
        let n = self.len()?;
        let raw = self.take(n)?;
        std::str::from_utf8(raw).map_err(|_| corrupt("stored text is not UTF-8"))
    }

    pub(super) fn string(&mut self) -> Result<String, StoreError> {
        self.str().map(str::to_owned)
    }

    pub(super) fn flag(&mut self) -> Result<bool, StoreError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("bad presence or flag byte in stored value")),
        }
    }

    pub(super) fn int(&mut self) -> Result<i64, StoreError> {
        let zigzag = u64::try_from(self.uint()?).map_err(|_| corrupt("integer out of range"))?;
        Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
    }

    pub(super) fn time(&mut self) -> Result<DateTime<Utc>, StoreError> {
        let secs = self.int()?;
        let nanos = u32::try_from(self.uint()?).map_err(|_| corrupt("time out of range"))?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| corrupt("time out of range"))
    }

    pub(super) fn opt_str(&mut self) -> Result<Option<&'a str>, StoreError> {
        if self.flag()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.opt_str()?.map(str::to_owned))
    }

    pub(super) fn strings(&mut self) -> Result<Vec<String>, StoreError> {
        let count = self.len()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.string()?);
        }
        Ok(out)
    }

    /// An account number, checked as when it entered (a stored one that is not is corrupt).
    pub(super) fn account_number(&mut self) -> Result<AccountNumber, StoreError> {
        AccountNumber::parse(self.str()?).map_err(|e| StoreError::Corrupt(format!("stored account number: {e}")))
    }

    pub(super) fn opt_account_number(&mut self) -> Result<Option<AccountNumber>, StoreError> {
        match self.opt_str()? {
            None => Ok(None),
            Some(s) => AccountNumber::parse(s)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("stored account number: {e}"))),
        }
    }

    pub(super) fn account_numbers(&mut self) -> Result<Vec<AccountNumber>, StoreError> {
        let count = self.len()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.account_number()?);
        }
        Ok(out)
    }

    pub(super) fn currency(&mut self) -> Result<Currency, StoreError> {
        Currency::parse(self.str()?).map_err(|e| StoreError::Corrupt(format!("stored currency: {e}")))
    }

    pub(super) fn decimal(&mut self) -> Result<Decimal, StoreError> {
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

    pub(super) fn opt_decimal(&mut self) -> Result<Option<Decimal>, StoreError> {
        if self.flag()? {
            self.decimal().map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn json_map(&mut self) -> Result<Option<Address>, StoreError> {
        if !self.flag()? {
            return Ok(None);
        }
        let text = self.str()?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("stored JSON map: {e}")))
    }

    /// Trailing bytes mean the value is not what this layout wrote.
    pub(super) fn finish<T>(self, value: T) -> Result<T, StoreError> {
        if self.at == self.bytes.len() {
            Ok(value)
        } else {
            Err(corrupt("trailing bytes after a stored value"))
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}
