//! The commit log: one sled key per commit, and the reason a posting costs few sled writes.
//!
//! sled 0.34's multi-tree transactions (and `apply_batch`) take its global concurrency-control
//! write lock, which `flush()` holds shared for the whole fsync, so every commit stalled behind
//! the flusher; plain inserts do not. We measured 7 keys per commit: 4.7k/s in a transaction
//! against 11k/s as plain inserts, and 1 key: 24k/s (`perf` and a sled-only probe, README).
//!
//! So a hot commit is written like this, without a transaction:
//! 1. `log[commit seq]` = every op of the write set, encoded below. This one insert is the
//!    commit point: once it is on disk the commit happened.
//! 2. Every op of a *derived* tree (records, accounts, indexes, ...) is applied as a plain
//!    insert or remove. The values are absolute, so applying an op twice is harmless.
//! 3. The flusher records, after each fsync, the last commit whose derived ops that fsync
//!    covered (`meta.log_applied`). On open, every log entry after it is applied again, which
//!    repairs a commit that a crash cut between steps 1 and 2.
//!
//! Some trees live only in the log, because the log entry already holds them and a second copy
//! would cost a sled write per commit: the journal, the stored Empayre events and the accepted
//! posting copies. Their readers find them by commit seq (see `SledStore::journal_after`).
//!
//! Entry layout (integers big-endian): version u8 = 1, flags u8, jseq u64 (the journal entry of
//! this commit, 0 for none), jseq_through u64 (the last journal seq at this commit, so the log
//! can be searched by journal seq), op count u32, then per op: tree u8, put u8 (1 put, 0
//! remove), key length u32, key, and for a put value length u32, value.

use super::bytes::ByteReader;
use super::{StoreError, TreeId};

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 8 + 8 + 4;

/// The entry holds a journal entry.
pub(crate) const HAS_JOURNAL: u8 = 1;
/// The entry holds a stored Empayre event.
pub(crate) const HAS_EVENT: u8 = 2;
/// The entry's record puts come with their search index writes, and their facet count
/// changes are kept by the tally (see `facet_counts`). Binaries before it ignore the bit; a
/// record put without it was made by a binary that does not keep the search indexes.
pub(crate) const SEARCH_INDEXED: u8 = 4;

pub(crate) type Op = (TreeId, Vec<u8>, Option<Vec<u8>>);

/// An op as read back from an entry, borrowing its bytes.
pub(crate) type OpRef<'a> = (TreeId, &'a [u8], Option<&'a [u8]>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub flags: u8,
    pub jseq: u64,
    pub jseq_through: u64,
}

pub(crate) fn key(commit: u64) -> [u8; 8] {
    commit.to_be_bytes()
}

pub(crate) fn commit_of_key(key: &[u8]) -> Result<u64, StoreError> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("commit log key is not 8 bytes".into()))
}

pub(crate) fn encode(header: Header, ops: &[Op]) -> Vec<u8> {
    let size: usize = ops
        .iter()
        .map(|(_, k, v)| 10 + k.len() + v.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(HEADER_LEN + size);
    out.push(VERSION);
    out.push(header.flags);
    out.extend_from_slice(&header.jseq.to_be_bytes());
    out.extend_from_slice(&header.jseq_through.to_be_bytes());
    out.extend_from_slice(&(ops.len() as u32).to_be_bytes());
    for (tree, k, v) in ops {
        out.push(*tree as u8);
        out.push(u8::from(v.is_some()));
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        if let Some(v) = v {
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
    out
}

pub(crate) fn header(bytes: &[u8]) -> Result<Header, StoreError> {
    let mut r = ByteReader::new(bytes, 0);
    if r.byte()? != VERSION {
        return Err(corrupt("unknown commit log entry version"));
    }
    Ok(Header {
        flags: r.byte()?,
        jseq: r.u64_be()?,
        jseq_through: r.u64_be()?,
    })
}

/// Every op of an entry, borrowed from its bytes.
pub(crate) fn ops(bytes: &[u8]) -> Result<Vec<OpRef<'_>>, StoreError> {
    let mut r = ByteReader::new(bytes, HEADER_LEN - 4);
    let count = r.u32_be()? as usize;
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let tree = TreeId::from_tag(r.byte()?).ok_or_else(|| corrupt("unknown tree in a commit log entry"))?;
        let is_put = r.byte()? == 1;
        let klen = r.u32_be()? as usize;
        let key = r.take(klen)?;
        let value = if is_put {
            let vlen = r.u32_be()? as usize;
            Some(r.take(vlen)?)
        } else {
            None
        };
        out.push((tree, key, value));
    }
    Ok(out)
}

/// The value an entry puts in `tree` (the first such op), e.g. its journal entry.
pub(crate) fn value_in(bytes: &[u8], tree: TreeId) -> Result<Option<&[u8]>, StoreError> {
    Ok(ops(bytes)?
        .into_iter()
        .find(|(t, _, v)| *t == tree && v.is_some())
        .and_then(|(_, _, v)| v))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written() {
        let header = Header {
            flags: HAS_JOURNAL,
            jseq: 7,
            jseq_through: 7,
        };
        let ops: Vec<Op> = vec![
            (
                TreeId::Journal,
                7u64.to_be_bytes().to_vec(),
                Some(b"{\"seq\":7}".to_vec()),
            ),
            (TreeId::Records, b"pabc".to_vec(), Some(Vec::new())),
            (TreeId::Unmatched, b"x".to_vec(), None),
        ];
        let bytes = encode(header, &ops);
        assert_eq!(super::header(&bytes).expect("header"), header);
        let back = super::ops(&bytes).expect("ops");
        assert_eq!(back.len(), 3);
        for ((t, k, v), (bt, bk, bv)) in ops.iter().zip(&back) {
            assert_eq!(t, bt);
            assert_eq!(k.as_slice(), *bk);
            assert_eq!(v.as_deref(), *bv);
        }
        assert_eq!(
            value_in(&bytes, TreeId::Journal).expect("read"),
            Some(&b"{\"seq\":7}"[..])
        );
        assert_eq!(value_in(&bytes, TreeId::Events).expect("read"), None);
    }

    #[test]
    fn a_truncated_or_foreign_entry_is_corrupt_not_a_panic() {
        let bytes = encode(
            Header {
                flags: 0,
                jseq: 0,
                jseq_through: 3,
            },
            &[(TreeId::Records, b"k".to_vec(), Some(b"value".to_vec()))],
        );
        for cut in 0..bytes.len() {
            let short = &bytes[..cut];
            assert!(header(short).is_err() || ops(short).is_err(), "cut at {cut}");
        }
        let mut foreign = bytes.clone();
        foreign[0] = 9;
        assert!(header(&foreign).is_err());
        let mut bad_tree = bytes;
        bad_tree[HEADER_LEN] = 200;
        assert!(ops(&bad_tree).is_err());
    }
}
