//! Entities as bytes: their encoding, writing one through to a [`WriteSet`], loading a table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, StoreError, WriteSet};
use crate::table::Table;

/// A visitor of persisted `(column family, key, value)` triples.
pub type PersistedVisit<'a> = dyn FnMut(&'static str, &[u8], &[u8]) + 'a;

/// A map of entities by id: ordered (the small catalogue tables) or a [`Table`].
pub(crate) trait ById<T> {
    /// Sets the entity of `id`.
    fn set(&mut self, id: String, v: T);
    /// Every entity in id order.
    fn sorted(&self) -> Vec<(&String, &T)>;
}

impl<T> ById<T> for BTreeMap<String, T> {
    fn set(&mut self, id: String, v: T) {
        self.insert(id, v);
    }
    fn sorted(&self) -> Vec<(&String, &T)> {
        self.iter().collect()
    }
}

impl<T> ById<T> for Table<T> {
    fn set(&mut self, id: String, v: T) {
        self.insert(id, v);
    }
    fn sorted(&self) -> Vec<(&String, &T)> {
        Table::sorted(self)
    }
}

/// The postcard encoding of an entity. Encoding into a growable vector fails only for types
/// postcard cannot describe (maps with non-string keys are fine; sequences of unknown length
/// are not), which no entity is: every entity type is encoded by the unit tests.
#[allow(clippy::expect_used)]
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("in-memory types always encode")
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(cf: &str, bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        cf: cf.to_string(),
        detail: e.to_string(),
    })
}

/// Inserts `v` under `id` and writes it through.
pub(crate) fn put<T: Serialize>(
    map: &mut impl ById<T>,
    ws: &mut WriteSet,
    cf: &'static str,
    id: &str,
    v: T,
) {
    ws.put(cf, id.as_bytes().to_vec(), encode(&v));
    map.set(id.to_string(), v);
}

pub(crate) fn load<T: for<'a> Deserialize<'a>>(
    backend: &dyn Backend,
    cf: &'static str,
    map: &mut impl ById<T>,
) -> Result<(), StoreError> {
    backend.scan(cf, &mut |k, v| {
        let id = std::str::from_utf8(k).map_err(|e| StoreError::Corrupt {
            cf: cf.to_string(),
            detail: e.to_string(),
        })?;
        map.set(id.to_string(), decode(cf, v)?);
        Ok(())
    })
}
