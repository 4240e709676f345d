//! The digest of a state, by which replicas are compared.

use sha2::{Digest as _, Sha256};

/// The digest of a state: SHA-256 over every persisted `(column family, key, value)` in the
/// order of [`COLUMN_FAMILIES`], keys in byte order, each field length-prefixed. Fed from the
/// machine ([`Machine::digest`]) or from what a backend holds (a node digesting a RocksDB
/// snapshot), it gives the same answer for the same state.
#[derive(Default)]
pub struct StateDigest(Sha256);

impl StateDigest {
    /// Adds one record; records come column family by column family, keys in order.
    pub fn record(&mut self, cf: &str, key: &[u8], value: &[u8]) {
        self.0.update(cf.as_bytes());
        self.0
            .update(u64::try_from(key.len()).unwrap_or(u64::MAX).to_be_bytes());
        self.0.update(key);
        self.0
            .update(u64::try_from(value.len()).unwrap_or(u64::MAX).to_be_bytes());
        self.0.update(value);
    }

    /// The digest in hex.
    pub fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
