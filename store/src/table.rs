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
//! random): nothing `apply` writes or answers may depend on it. So a table offers no plain
//! iteration: [`Table::sorted`] in id order for anything whose order matters, and
//! [`Table::unordered`] for folds whose result cannot depend on the order (sets, counts, sums,
//! checks that pass or fail as a whole). Tests build machines with chosen seeds
//! ([`with_hash_seed`]) and compare them.

use std::borrow::Borrow;
use std::cell::Cell;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;

/// The hasher of the state machine's hash maps: foldhash, seeded at random once per process,
/// or with the seed [`with_hash_seed`] names while it runs.
#[derive(Debug, Clone)]
pub(crate) struct Hasher(foldhash::fast::FixedState);

impl Default for Hasher {
    fn default() -> Self {
        let seed = SEED_OVERRIDE
            .with(Cell::get)
            .unwrap_or_else(|| *PROCESS_SEED.get_or_init(random_seed));
        Hasher(foldhash::fast::FixedState::with_seed(seed))
    }
}

impl BuildHasher for Hasher {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

static PROCESS_SEED: OnceLock<u64> = OnceLock::new();

thread_local! {
    static SEED_OVERRIDE: Cell<Option<u64>> = const { Cell::new(None) };
}

/// A seed from the standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x0074_6963_6b65_7464_u64)
}

/// Runs `f` with every hash table it creates on this thread seeded with `seed`.
pub fn with_hash_seed<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    let before = SEED_OVERRIDE.with(|s| s.replace(Some(seed)));
    let out = f();
    SEED_OVERRIDE.with(|s| s.set(before));
    out
}

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

    /// Every id and row in the table's own order, which depends on the hasher's seed: only for
    /// folds whose result does not depend on the order.
    pub fn unordered(&self) -> impl Iterator<Item = (&String, &T)> + '_ {
        self.rows.iter().map(|(k, r)| (k, &**r))
    }

    /// Every id and row, in id order.
    pub fn sorted(&self) -> Vec<(&String, &T)> {
        let mut all: Vec<_> = self.unordered().collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
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
        let mut ids: Vec<_> = t.unordered().map(|(k, _)| k.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 10_000);
        assert_eq!(t.unordered().count(), 10_000);
        let sorted: Vec<_> = t.sorted().into_iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(sorted, ids);
    }

    #[test]
    fn the_seed_decides_the_order() {
        let order = |seed| {
            super::with_hash_seed(seed, || {
                let mut t = Table::default();
                for i in 0..64u32 {
                    t.insert(format!("o-{i}"), i);
                }
                t.unordered().map(|(k, _)| k.clone()).collect::<Vec<_>>()
            })
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
    }
}
