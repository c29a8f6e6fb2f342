//! The search's `like` with a literal start on ids, account numbers and confirmation numbers:
//! the literal start (the text before the first `%`) is a key range, on the records (keyed by
//! kind and id) or on `idx_account` / `idx_confirmation` (keyed by length and text, so one range
//! per length). The records in
//! those ranges that were received in the window are the candidates; the whole pattern and the
//! other filters are then checked on each, as for named ids or accounts.
//!
//! A `like` on account numbers without a literal start visits every account number of
//! `idx_account` (one seek each) instead: a biller has far fewer accounts than a day has
//! records. Confirmation numbers are about one per record, so theirs would gain nothing.
//!
//! A literal start that names more records (of all time) than the window holds is no help:
//! then the candidates are given up as soon as that many were read, and the window is walked
//! instead, so such a search costs at most about twice the walk.

use super::super::search_index::record_key_after;
use super::super::{codec, order_preserving_i64, record_key, SledStore, StoreError, TreeId};
use crate::ledger::RecordKind;
use crate::store::query::SearchQuery;

/// The text before a pattern's first `%` (the whole pattern when it has none).
pub(in crate::store::sled_store) fn literal_start(pattern: &str) -> &str {
    pattern.split('%').next().unwrap_or("")
}

/// The smallest byte string greater than every string that starts with `prefix` (None when
/// there is none: all bytes 0xFF).
pub(in crate::store::sled_store) fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn range_of(tree: &sled::Tree, prefix: &[u8]) -> sled::Iter {
    match after_prefix(prefix) {
        Some(end) => tree.range(prefix.to_vec()..end),
        None => tree.range(prefix.to_vec()..),
    }
}

impl SledStore {
    /// The window's time-index keys of the records whose id starts with `start`, or None when
    /// more records than the window holds have that start.
    pub(in crate::store::sled_store) fn keys_of_id_start(
        &self,
        q: &SearchQuery,
        start: &str,
    ) -> Result<Option<Vec<sled::IVec>>, StoreError> {
        let budget = self.count_in_window(q)?;
        let records = self.tree(TreeId::Records)?;
        let mut read = 0usize;
        let mut keys: Vec<sled::IVec> = Vec::new();
        for kind in [
            RecordKind::Payment,
            RecordKind::Refund,
            RecordKind::EmpayrePayment,
            RecordKind::EmpayreRefund,
        ] {
            for item in range_of(&records, &record_key(kind, start)) {
                read += 1;
                if read > budget {
                    return Ok(None);
                }
                let (key, bytes) = item?;
                let nanos = codec::record_received_at(&bytes)?
                    .timestamp_nanos_opt()
                    .unwrap_or(i64::MAX);
                if (q.from_nanos..q.until_nanos).contains(&nanos) {
                    let mut time_key = order_preserving_i64(nanos).to_vec();
                    time_key.extend_from_slice(&key);
                    keys.push(time_key.into());
                }
            }
        }
        keys.sort();
        Ok(Some(keys))
    }

    /// The window's time-index keys of the records whose account number (`index`
    /// `idx_account`) or confirmation number (`idx_confirmation`) is `like` the pattern, or
    /// None when that would read more index entries than the window holds records. Only the
    /// texts with the pattern's literal start are visited (one seek each), and only the records
    /// of those that match the whole pattern.
    pub(in crate::store::sled_store) fn keys_of_texts_like(
        &self,
        q: &SearchQuery,
        index: TreeId,
        pattern: &str,
    ) -> Result<Option<Vec<sled::IVec>>, StoreError> {
        let start = literal_start(pattern);
        let budget = self.count_in_window(q)?;
        let index = self.tree(index)?;
        let mut read = 0usize;
        let mut keys: Vec<sled::IVec> = Vec::new();
        // One range per length present (keys start with it); a text shorter than the start
        // cannot have it, and none is empty.
        let mut from_length = start.len().max(1);
        while let Some(len) = next_length(&index, from_length)? {
            let mut group = (len as u16).to_be_bytes().to_vec();
            group.extend_from_slice(start.as_bytes());
            let mut texts = AccountHeads::within(&group);
            while let Some(head) = texts.next(&index, false)? {
                read += 1;
                if read > budget {
                    return Ok(None);
                }
                let text = std::str::from_utf8(&head[2..])
                    .map_err(|_| StoreError::Corrupt("a text index key that is not UTF-8".into()))?;
                if !super::like(text, pattern) {
                    continue;
                }
                for item in index.range(window_start(&head, q.from_nanos)..window_start(&head, q.until_nanos)) {
                    let (key, _) = item?;
                    read += 1;
                    keys.push(sled::IVec::from(record_key_after(&key, head.len())?));
                }
                if read > budget {
                    return Ok(None);
                }
            }
            from_length = len + 1;
        }
        keys.sort();
        Ok(Some(keys))
    }

    /// The window's time-index keys of the records of these account numbers (`idx_account`) or
    /// confirmation numbers (`idx_confirmation`).
    pub(in crate::store::sled_store) fn keys_of_texts(
        &self,
        q: &SearchQuery,
        index: TreeId,
        texts: &[&str],
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let index = self.tree(index)?;
        let mut keys: Vec<sled::IVec> = Vec::new();
        for text in texts {
            let mut head = u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes().to_vec();
            head.extend_from_slice(text.as_bytes());
            for item in index.range(window_start(&head, q.from_nanos)..window_start(&head, q.until_nanos)) {
                let (key, _) = item?;
                // After the head comes the time-index key itself (time, kind tag, id).
                keys.push(sled::IVec::from(record_key_after(&key, head.len())?));
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// The smallest text length of at least `from` that an `idx_account`-shaped index holds.
pub(in crate::store::sled_store) fn next_length(index: &sled::Tree, from: usize) -> Result<Option<usize>, StoreError> {
    let Ok(from) = u16::try_from(from) else {
        return Ok(None);
    };
    let Some((key, _)) = index.range(from.to_be_bytes()..).next().transpose()? else {
        return Ok(None);
    };
    key.get(..2)
        .map(|b| Some(usize::from(u16::from_be_bytes([b[0], b[1]]))))
        .ok_or_else(|| StoreError::Corrupt("text index key shorter than 2 bytes".into()))
}

/// `head ++ time`: where the records of the account `head` (u16 length ++ account number, as
/// `idx_account` keys start) received from `nanos` on begin.
pub(in crate::store::sled_store) fn window_start(head: &[u8], nanos: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(head.len() + 8);
    key.extend_from_slice(head);
    key.extend_from_slice(&order_preserving_i64(nanos));
    key
}

/// The accounts of `idx_account` within a key range, one after another in either direction,
/// each found by one seek: their heads (u16 length ++ account number), which start every key
/// of the account.
pub(in crate::store::sled_store) struct AccountHeads {
    low: Vec<u8>,
    high: Option<Vec<u8>>,
}

impl AccountHeads {
    /// The accounts whose heads start with `prefix`.
    pub(in crate::store::sled_store) fn within(prefix: &[u8]) -> Self {
        Self {
            low: prefix.to_vec(),
            high: after_prefix(prefix),
        }
    }

    /// The next account (the smallest left, or the largest when `descending`).
    pub(in crate::store::sled_store) fn next(
        &mut self,
        index: &sled::Tree,
        descending: bool,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut range = match &self.high {
            Some(high) if *high <= self.low => return Ok(None),
            Some(high) => index.range(self.low.clone()..high.clone()),
            None => index.range(self.low.clone()..),
        };
        let item = if descending { range.next_back() } else { range.next() };
        let Some(item) = item.transpose()? else {
            return Ok(None);
        };
        let key = item.0;
        let len = key
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| StoreError::Corrupt("account index key shorter than 2 bytes".into()))?;
        let head = key
            .get(..2 + len)
            .ok_or_else(|| StoreError::Corrupt("account index key shorter than its account".into()))?
            .to_vec();
        if descending {
            // Every key of this account starts with its head, so is not below it.
            self.high = Some(head.clone());
        } else {
            match after_prefix(&head) {
                Some(next) => self.low = next,
                None => self.high = Some(self.low.clone()),
            }
        }
        Ok(Some(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_start_ends_at_the_first_wildcard() {
        for (pattern, start) in [
            ("ACC-1%", "ACC-1"),
            ("%1", ""),
            ("A%B%", "A"),
            ("exact", "exact"),
            ("", ""),
        ] {
            assert_eq!(literal_start(pattern), start, "{pattern}");
        }
    }

    #[test]
    fn after_a_prefix_comes_the_next_string_without_it() {
        assert_eq!(after_prefix(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(after_prefix(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(after_prefix(&[0xFF, 0xFF]), None);
        assert_eq!(after_prefix(b""), None);
    }
}
