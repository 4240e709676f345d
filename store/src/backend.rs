//! Persistence of the state machine: a small trait over ordered key-value column families,
//! with a RocksDB implementation and an in-memory twin for unit, property and simulation tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A failure of the machine underneath the state (disk, corruption), never a domain rejection.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed to read or write.
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored bytes did not decode.
    #[error("corrupt state in {cf}: {detail}")]
    Corrupt {
        /// The column family holding the bad value.
        cf: String,
        /// What failed to decode.
        detail: String,
    },
    /// An invariant did not hold on load.
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// The state is at a cluster version past this binary's: it may hold what this binary
    /// cannot decode or would apply differently, so it is not loaded.
    #[error(
        "the state is at cluster version {version}, {} (binary version {}): upgrade this \
         node's binary",
        crate::version::NEWER_THAN_BINARY,
        crate::version::BINARY_VERSION
    )]
    VersionTooNew {
        /// The state's cluster version.
        version: u32,
    },
}

/// One write of a [`WriteSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value` in column family `cf`.
    Put {
        /// Column family name.
        cf: &'static str,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove `key` from column family `cf`.
    Delete {
        /// Column family name.
        cf: &'static str,
        /// Key bytes.
        key: Vec<u8>,
    },
}

/// Writes collected while applying one or more commands, committed atomically by a [`Backend`].
#[derive(Debug, Default, Clone)]
pub struct WriteSet {
    ops: Vec<WriteOp>,
}

impl WriteSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, cf: &'static str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, cf: &'static str, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Delete {
            cf,
            key: key.into(),
        });
    }

    /// The writes in the order they were added.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A visitor of key-value pairs in key order; an error stops the scan.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// Column families of the in-memory backend.
type MemCfs = BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Ordered key-value column families the state machine persists into.
pub trait Backend: Send + Sync {
    /// Commits every write of `set` atomically: after a crash either all are visible or none.
    fn write(&self, set: &WriteSet) -> Result<(), StoreError>;

    /// Visits every key-value pair of `cf` in key order.
    fn scan(&self, cf: &'static str, visit: &mut Visit<'_>) -> Result<(), StoreError>;

    /// Reads one key.
    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The in-memory twin of [`RocksBackend`], for tests and simulation.
#[derive(Debug, Default, Clone)]
pub struct MemBackend {
    cfs: Arc<Mutex<MemCfs>>,
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for MemBackend {
    fn write(&self, set: &WriteSet) -> Result<(), StoreError> {
        let mut cfs = self
            .cfs
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        for op in set.ops() {
            match op {
                WriteOp::Put { cf, key, value } => {
                    cfs.entry(cf)
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                WriteOp::Delete { cf, key } => {
                    cfs.entry(cf).or_default().remove(key);
                }
            }
        }
        Ok(())
    }

    fn scan(&self, cf: &'static str, visit: &mut Visit<'_>) -> Result<(), StoreError> {
        let cfs = self
            .cfs
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        if let Some(map) = cfs.get(cf) {
            for (k, v) in map {
                visit(k, v)?;
            }
        }
        Ok(())
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cfs = self
            .cfs
            .lock()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(cfs.get(cf).and_then(|m| m.get(key).cloned()))
    }
}

#[cfg(feature = "rocksdb")]
pub use rocks::RocksBackend;

#[cfg(feature = "rocksdb")]
mod rocks {
    use super::{Backend, StoreError, Visit, WriteOp, WriteSet};
    use std::sync::Arc;

    /// Column families of a RocksDB instance shared with the Raft log.
    ///
    /// The instance must have been opened with every name of [`crate::COLUMN_FAMILIES`].
    #[derive(Clone)]
    pub struct RocksBackend {
        db: Arc<rocksdb::DB>,
    }

    impl RocksBackend {
        /// Wraps an open database.
        pub fn new(db: Arc<rocksdb::DB>) -> Self {
            Self { db }
        }

        /// The underlying database.
        pub fn db(&self) -> &Arc<rocksdb::DB> {
            &self.db
        }

        fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
            self.db
                .cf_handle(name)
                .ok_or_else(|| StoreError::Backend(format!("column family {name} missing")))
        }

        /// Adds every write of `set` to a RocksDB batch, so a caller can commit it together
        /// with writes of its own.
        pub fn fill_batch(
            &self,
            set: &WriteSet,
            batch: &mut rocksdb::WriteBatch,
        ) -> Result<(), StoreError> {
            for op in set.ops() {
                match op {
                    WriteOp::Put { cf, key, value } => batch.put_cf(self.cf(cf)?, key, value),
                    WriteOp::Delete { cf, key } => batch.delete_cf(self.cf(cf)?, key),
                }
            }
            Ok(())
        }
    }

    impl Backend for RocksBackend {
        fn write(&self, set: &WriteSet) -> Result<(), StoreError> {
            let mut batch = rocksdb::WriteBatch::default();
            self.fill_batch(set, &mut batch)?;
            self.db
                .write(batch)
                .map_err(|e| StoreError::Backend(e.to_string()))
        }

        fn scan(&self, cf: &'static str, visit: &mut Visit<'_>) -> Result<(), StoreError> {
            let handle = self.cf(cf)?;
            for item in self.db.iterator_cf(handle, rocksdb::IteratorMode::Start) {
                let (k, v) = item.map_err(|e| StoreError::Backend(e.to_string()))?;
                visit(&k, &v)?;
            }
            Ok(())
        }

        fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.db
                .get_cf(self.cf(cf)?, key)
                .map_err(|e| StoreError::Backend(e.to_string()))
        }
    }
}
