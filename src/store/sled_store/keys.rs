//! Key encodings: big-endian and order-preserving, so that sled's byte order is the order the
//! reads want (time-ordered ranges, prefix scans).

use serde::de::DeserializeOwned;

use crate::ledger::RecordKind;
use crate::store::StoreError;

/// A legacy JSON value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn record_key(kind: RecordKind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(kind.tag());
    key.extend_from_slice(id.as_bytes());
    key
}

/// Time-index key: an order-preserving encoding of the receive time, then the record key.
pub(crate) fn received_key(at: chrono::DateTime<chrono::Utc>, kind: RecordKind, id: &str) -> Vec<u8> {
    received_key_at(at.timestamp_nanos_opt().unwrap_or(i64::MAX), kind, id)
}

/// Time-index key of a receive time in nanoseconds since the epoch.
pub(crate) fn received_key_at(nanos: i64, kind: RecordKind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + id.len());
    key.extend_from_slice(&order_preserving_i64(nanos));
    key.extend_from_slice(&record_key(kind, id));
    key
}

/// Flips the sign bit so that big-endian byte order equals numeric order.
pub(crate) fn order_preserving_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// Index key `value 0x00 customer_reference`.
pub(crate) fn index_key(value: &str, customer_reference: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 1 + customer_reference.len());
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key.extend_from_slice(customer_reference.as_bytes());
    key
}
