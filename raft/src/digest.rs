//! Replica digests at one index, so that divergence is caught where it happens (CockroachDB's
//! consistency checker, etcd's `endpoint hashkv`).
//!
//! The leader proposes `Command::DigestState`. Every replica, right after applying that entry,
//! takes a RocksDB snapshot of its state as of that index and digests it on a thread of its own
//! at low priority ([`StateDigest`], the same digest as `Query::Digest`): nothing is hashed
//! under the state machine's lock and apply goes on meanwhile. The leader then proposes its own
//! digest in `Command::CheckDigest`; every replica that digested the index compares, and one
//! that differs logs it, counts it (`ticketd_replica_digest_mismatches_total`) and shows it in
//! `ticketd_replica_diverged`. `ticketctl endpoint hashkv` asks every node for its digest of
//! one index.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use rocksdb::{IteratorMode, DB};
use ticketd_store::{StateDigest, COLUMN_FAMILIES};

/// Digests kept per node (and leader digests waiting for a node's own).
pub const DIGESTS_KEPT: usize = 16;
/// Digests computed at once at most; a `DigestState` entry beyond that is not digested.
pub const DIGESTS_IN_FLIGHT_MAX: usize = 2;

/// What a node knows of its digest of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStatus {
    /// Not digested here: not a digest entry, applied before this node's start or skipped over
    /// by a snapshot install, or forgotten (older than the [`DIGESTS_KEPT`] newest).
    Unknown,
    /// Being computed.
    Pending,
    /// The hex SHA-256 of the state as of the index.
    Computed(String),
}

#[derive(Debug, Default)]
struct Inner {
    computed: BTreeMap<u64, String>,
    pending: BTreeSet<u64>,
    /// The leader's digests of indexes still being digested here.
    expected: BTreeMap<u64, String>,
    /// The newest index where this node's digest differed from the leader's.
    diverged_at: Option<u64>,
}

/// A node's digests of its state at the digest entries it applied.
#[derive(Debug, Default)]
pub struct Digests {
    inner: Mutex<Inner>,
}

impl Digests {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What this node knows of its digest of `index`.
    pub fn status(&self, index: u64) -> DigestStatus {
        let inner = self.lock();
        match inner.computed.get(&index) {
            Some(d) => DigestStatus::Computed(d.clone()),
            None if inner.pending.contains(&index) => DigestStatus::Pending,
            None => DigestStatus::Unknown,
        }
    }

    /// The digests computed at indexes above `index`, oldest first.
    pub fn computed_after(&self, index: u64) -> Vec<(u64, String)> {
        let inner = self.lock();
        inner
            .computed
            .range(index.saturating_add(1)..)
            .map(|(i, d)| (*i, d.clone()))
            .collect()
    }

    /// The newest index at which this node's digest differed from the leader's, if any.
    pub fn diverged_at(&self) -> Option<u64> {
        self.lock().diverged_at
    }

    /// The leader's digest of `index`: compared now if this node has its own, when it has
    /// computed it if pending, not at all if it never will.
    pub fn expect(&self, index: u64, leader: &str) {
        let mut inner = self.lock();
        if let Some(ours) = inner.computed.get(&index).cloned() {
            compare(&mut inner, index, &ours, leader);
        } else if inner.pending.contains(&index) {
            inner.expected.insert(index, leader.to_string());
            trim(&mut inner.expected);
        }
    }

    fn begin(&self, index: u64) -> bool {
        let mut inner = self.lock();
        if inner.pending.len() >= DIGESTS_IN_FLIGHT_MAX {
            return false;
        }
        inner.pending.insert(index)
    }

    fn finish(&self, index: u64, result: Result<String, String>) {
        let mut inner = self.lock();
        inner.pending.remove(&index);
        let leader = inner.expected.remove(&index);
        match result {
            Ok(ours) => {
                metrics::gauge!("ticketd_replica_digest_index").set(index as f64);
                if let Some(leader) = leader {
                    compare(&mut inner, index, &ours, &leader);
                }
                inner.computed.insert(index, ours);
                trim(&mut inner.computed);
            }
            Err(e) => tracing::warn!(index, error = %e, "state digest failed"),
        }
    }
}

/// Keeps the [`DIGESTS_KEPT`] newest entries of `m`.
fn trim(m: &mut BTreeMap<u64, String>) {
    while m.len() > DIGESTS_KEPT {
        m.pop_first();
    }
}

fn compare(inner: &mut Inner, index: u64, ours: &str, leader: &str) {
    if ours == leader {
        metrics::counter!("ticketd_replica_digests_checked_total").increment(1);
        return;
    }
    metrics::counter!("ticketd_replica_digest_mismatches_total").increment(1);
    metrics::gauge!("ticketd_replica_diverged").set(1.0);
    inner.diverged_at = Some(index);
    tracing::error!(
        index,
        ours,
        leader,
        "this replica's state differs from the leader's at the same index"
    );
}

/// Digests `db`'s state as it is now, as of log `index`, on a thread of its own at low
/// priority. Returns once that thread holds its RocksDB snapshot (microseconds), so whatever
/// is written after this call is not in the digest.
pub fn spawn(db: Arc<DB>, index: u64, digests: Arc<Digests>) {
    if !digests.begin(index) {
        tracing::warn!(
            index,
            "{DIGESTS_IN_FLIGHT_MAX} state digests are running: this one is skipped"
        );
        return;
    }
    let (taken_tx, taken_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let statuses = digests.clone();
    let spawned = std::thread::Builder::new()
        .name("state-digest".into())
        .spawn(move || {
            let view = db.snapshot();
            let _ = taken_tx.send(());
            crate::background::lower_priority(crate::background::BACKGROUND_NICE);
            let started = std::time::Instant::now();
            let result = digest_view(&db, &view);
            metrics::histogram!("ticketd_replica_digest_seconds")
                .record(started.elapsed().as_secs_f64());
            statuses.finish(index, result);
        });
    match spawned {
        // The thread has its snapshot when it says so, or it died trying.
        Ok(_) => {
            let _ = taken_rx.recv();
        }
        Err(e) => digests.finish(index, Err(format!("no thread for the digest: {e}"))),
    }
}

fn digest_view(db: &DB, view: &rocksdb::Snapshot<'_>) -> Result<String, String> {
    let mut digest = StateDigest::default();
    for name in COLUMN_FAMILIES {
        let cf = db
            .cf_handle(name)
            .ok_or_else(|| format!("column family {name} missing"))?;
        for item in view.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| e.to_string())?;
            digest.record(name, &k, &v);
        }
    }
    Ok(digest.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_digest_is_compared_before_or_after_the_nodes_own() {
        let d = Digests::default();
        assert!(d.begin(5));
        d.expect(5, "aa");
        assert_eq!(d.status(5), DigestStatus::Pending);
        d.finish(5, Ok("aa".into()));
        assert_eq!(d.status(5), DigestStatus::Computed("aa".into()));
        assert_eq!(d.diverged_at(), None);
        assert!(d.begin(9));
        d.finish(9, Ok("bb".into()));
        d.expect(9, "cc");
        assert_eq!(d.diverged_at(), Some(9));
        d.expect(12, "dd");
        assert_eq!(d.status(12), DigestStatus::Unknown, "never digested here");
        assert_eq!(d.computed_after(5), vec![(9, "bb".to_string())]);
    }

    #[test]
    fn digests_in_flight_and_kept_are_bounded() {
        let d = Digests::default();
        assert!(d.begin(1) && d.begin(2));
        assert!(!d.begin(3), "a third at once is skipped");
        d.finish(1, Ok("x".into()));
        d.finish(2, Err("disk".into()));
        assert_eq!(d.status(2), DigestStatus::Unknown);
        for i in 10..40 {
            assert!(d.begin(i));
            d.finish(i, Ok(format!("{i}")));
        }
        assert_eq!(d.computed_after(0).len(), DIGESTS_KEPT);
    }
}
