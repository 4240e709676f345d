//! Entity tables of the state machine: rows by id, for the tables that grow with sales.
//!
//! A `BTreeMap<String, _>` chases one heap pointer per key it compares; with a few hundred
//! thousand rows those lookups took a third of a node's apply. A hash map finds a row in one or
//! two cache misses, but an ordinary one doubles all at once: moving every row into a freshly
//! faulted table stalled apply for a few hundred milliseconds at a quarter million rows. So a
//! [`Table`] is a hash map that moves a few rows per insert while it grows (`griddle`), with
//! each row boxed so a slot is 32 bytes whatever the row's size.
//!
//! Iteration order is unspecified and differs between processes (the hasher is seeded at
//! random): nothing `apply` writes or answers may depend on it.

use std::borrow::Borrow;
use std::hash::Hash;

/// The hasher of the state machine's hash maps: fast, seeded at random per process.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// A hash map with incremental resizing and the state machine's hasher.
pub(crate) type HashMap<K, V> = griddle::HashMap<K, V, Hasher>;

/// Rows of type `T` by id.
#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    rows: HashMap<String, Box<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            rows: HashMap::default(),
        }
    }
}

impl<T> Table<T> {
    /// The row of `id`.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, id: &Q) -> Option<&T>
    where
        String: Borrow<Q>,
    {
        self.rows.get(id).map(|r| &**r)
    }

    /// True when `id` has a row.
    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, id: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.rows.contains_key(id)
    }

    /// Sets the row of `id`, returning the one it replaced.
    pub fn insert(&mut self, id: String, row: T) -> Option<T> {
        self.rows.insert(id, Box::new(row)).map(|r| *r)
    }

    /// Every row, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.rows.values().map(|r| &**r)
    }

    /// Every id and row, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> + '_ {
        self.rows.iter().map(|(k, r)| (k, &**r))
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn rows_are_found_replaced_and_removed_by_id() {
        let mut t = Table::default();
        for i in 0..10_000u32 {
            assert_eq!(t.insert(format!("h-{i}"), i), None);
        }
        assert_eq!(t.get("h-42"), Some(&42));
        assert_eq!(t.get("h-7"), Some(&7));
        assert_eq!(t.insert("h-42".into(), 1), Some(42));
        assert!(t.contains_key("h-0"));
        assert!(!t.contains_key("h-10000"));
        let mut ids: Vec<_> = t.iter().map(|(k, _)| k.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 10_000);
        assert_eq!(t.values().count(), 10_000);
    }
}
