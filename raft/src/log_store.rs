//! The Raft log on RocksDB, with group commit.
//!
//! `append` writes the entries into RocksDB's memtable and WAL (no sync) and hands openraft's
//! completion callback to one flusher thread. The flusher takes every callback waiting, fsyncs
//! the WAL once, then completes them all: N concurrent appends cost one fsync. Openraft is told an
//! entry is durable only after the fsync that covers it.
//!
//! The newest entries also stay in memory ([`EntryCache`], bounded by their encoded bytes): the
//! leader's replication streams and every node's state machine read an entry right after it was
//! appended, and would otherwise read it back from RocksDB and decode it each time.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, WriteBatch, DB};

use crate::codec::{decode, encode};
use crate::{TypeConfig, CF_LOG, CF_RAFT_META};

/// Most callbacks completed by one fsync; more wait for the next one.
const FLUSH_BATCH_MAX: usize = 4096;
/// Appends queued for the flusher before `append` waits (back-pressure on the Raft core).
const FLUSH_QUEUE_CAPACITY: usize = 1024;
/// Encoded bytes of the entries the cache keeps (the newest); older ones are read from RocksDB.
pub const ENTRY_CACHE_BYTES_MAX: usize = 32 << 20;

const KEY_VOTE: &[u8] = b"vote";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> io::Result<u64> {
    let arr: [u8; 8] = key
        .try_into()
        .map_err(|_| io_err("log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(arr))
}

/// Decodes the entry at `index` of this node's log. One of an encoding past this binary's
/// (written by a later binary on the same data) stops the node.
fn decode_entry(index: Option<u64>, bytes: &[u8]) -> io::Result<EntryOf<TypeConfig>> {
    decode(bytes).inspect_err(|e| {
        let msg = e.to_string();
        if crate::version::is_too_new(&msg) {
            let at = index.map_or_else(|| "the last entry".to_string(), |i| format!("entry {i}"));
            crate::version::halt(format!("{at} of this node's log holds {msg}"));
        }
    })
}

fn cf<'a>(db: &'a DB, name: &str) -> io::Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| io_err(format!("column family {name} missing")))
}

struct PendingFlush {
    callback: IOFlushed<TypeConfig>,
    entries: usize,
    appended_at: Instant,
}

/// The newest entries of the log, contiguous by index and ending at the last one appended.
/// Each entry is weighed by its encoded size; past [`ENTRY_CACHE_BYTES_MAX`] the oldest go.
#[derive(Default)]
struct EntryCache {
    entries: VecDeque<(EntryOf<TypeConfig>, usize)>,
    bytes: usize,
}

impl EntryCache {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index())
    }

    /// Keeps `entry`, appended right after the others (any gap or overlap starts afresh).
    fn push(&mut self, entry: EntryOf<TypeConfig>, bytes: usize) {
        let follows = match self.entries.back() {
            None => true,
            Some((last, _)) => last.index().checked_add(1) == Some(entry.index()),
        };
        if !follows {
            self.entries.clear();
            self.bytes = 0;
        }
        self.entries.push_back((entry, bytes));
        self.bytes += bytes;
        while self.bytes > ENTRY_CACHE_BYTES_MAX && self.entries.len() > 1 {
            if let Some((_, b)) = self.entries.pop_front() {
                self.bytes -= b;
            }
        }
    }

    /// Forgets the entries from `index` on.
    fn truncate_from(&mut self, index: u64) {
        while self.entries.back().is_some_and(|(e, _)| e.index() >= index) {
            if let Some((_, b)) = self.entries.pop_back() {
                self.bytes -= b;
            }
        }
    }

    /// Forgets the entries up to and including `index`.
    fn purge_to(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(e, _)| e.index() <= index)
        {
            if let Some((_, b)) = self.entries.pop_front() {
                self.bytes -= b;
            }
        }
    }

    /// The entries of `range` when the cache holds its first one (it then holds every later
    /// entry of the log); `None` otherwise, and the caller reads RocksDB.
    fn get<RB: RangeBounds<u64>>(
        &self,
        start: u64,
        range: &RB,
    ) -> Option<Vec<EntryOf<TypeConfig>>> {
        let first = self.first_index()?;
        if start < first {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        if skip >= self.entries.len() {
            return None;
        }
        Some(
            self.entries
                .iter()
                .skip(skip)
                .take_while(|(e, _)| range.contains(&e.index()))
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

/// Reads log entries and the vote; cheap to clone.
#[derive(Clone)]
pub struct LogReader {
    db: Arc<DB>,
    cache: Arc<Mutex<EntryCache>>,
}

impl LogReader {
    fn cache(&self) -> std::sync::MutexGuard<'_, EntryCache> {
        self.cache.lock().expect("entry cache lock poisoned")
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        let bytes = self
            .db
            .get_cf(cf(&self.db, CF_RAFT_META)?, key)
            .map_err(io_err)?;
        bytes.map(|b| decode(&b)).transpose()
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<TypeConfig>>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        if let Some(hit) = self.cache().get(start, &range) {
            return Ok(hit);
        }
        let handle = cf(&self.db, CF_LOG)?;
        let mut out = Vec::new();
        let from = index_key(start);
        for item in self
            .db
            .iterator_cf(handle, IteratorMode::From(&from, Direction::Forward))
        {
            let (k, v) = item.map_err(io_err)?;
            let index = key_index(&k)?;
            if !range.contains(&index) {
                break;
            }
            let entry = decode_entry(Some(index), &v)?;
            if entry.index() != index {
                return Err(io_err(format!(
                    "log key {index} holds entry {}",
                    entry.index()
                )));
            }
            out.push(entry);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        self.get_meta(KEY_VOTE)
    }
}

/// Counts of the group commit, for tests and operators.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// WAL fsyncs done.
    pub fsyncs: AtomicU64,
    /// Appends completed by them.
    pub appends: AtomicU64,
}

/// The Raft log storage of a node.
pub struct LogStore {
    reader: LogReader,
    flush_tx: tokio::sync::mpsc::Sender<PendingFlush>,
    stats: Arc<FlushStats>,
    /// Joined on drop, so the flusher's handle on the database is gone before the caller goes
    /// on (a process that exits while a detached thread still closes RocksDB can abort).
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl LogStore {
    /// Opens the log in `db` and starts its flusher thread.
    pub fn new(db: Arc<DB>) -> io::Result<Self> {
        cf(&db, CF_LOG)?;
        cf(&db, CF_RAFT_META)?;
        let (flush_tx, flush_rx) = tokio::sync::mpsc::channel(FLUSH_QUEUE_CAPACITY);
        let flush_db = db.clone();
        let stats = Arc::new(FlushStats::default());
        let flush_stats = stats.clone();
        let flusher = std::thread::Builder::new()
            .name("raft-log-flusher".into())
            .spawn(move || run_flusher(flush_db, flush_rx, flush_stats))?;
        Ok(Self {
            reader: LogReader {
                db,
                cache: Arc::default(),
            },
            flush_tx,
            stats,
            flusher: Some(flusher),
        })
    }

    /// Group-commit counters since start.
    pub fn flush_stats(&self) -> Arc<FlushStats> {
        self.stats.clone()
    }

    fn db(&self) -> &DB {
        &self.reader.db
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> io::Result<()> {
        self.db()
            .put_cf(cf(self.db(), CF_RAFT_META)?, key, encode(value)?)
            .map_err(io_err)
    }
}

/// Completes queued appends: one WAL fsync for everything waiting, then every callback.
fn run_flusher(
    db: Arc<DB>,
    mut rx: tokio::sync::mpsc::Receiver<PendingFlush>,
    stats: Arc<FlushStats>,
) {
    let mut batch: Vec<PendingFlush> = Vec::with_capacity(FLUSH_BATCH_MAX);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < FLUSH_BATCH_MAX {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = db.flush_wal(true).map_err(io_err);
        let fsync_s = started.elapsed().as_secs_f64();
        metrics::histogram!("ticketd_raft_fsync_seconds").record(fsync_s);
        let entries: usize = batch.iter().map(|p| p.entries).sum();
        metrics::histogram!("ticketd_raft_entries_per_fsync").record(entries as f64);
        metrics::histogram!("ticketd_raft_appends_per_fsync").record(batch.len() as f64);
        metrics::counter!("ticketd_raft_fsyncs_total").increment(1);
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, "WAL fsync failed");
        }
        for p in batch.drain(..) {
            metrics::histogram!("ticketd_raft_append_seconds")
                .record(p.appended_at.elapsed().as_secs_f64());
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            p.callback.io_completed(r);
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        // Closing the queue ends the flusher after the batch it is on (at most one fsync).
        let (closed, _) = tokio::sync::mpsc::channel(1);
        drop(std::mem::replace(&mut self.flush_tx, closed));
        if let Some(flusher) = self.flusher.take() {
            if flusher.join().is_err() {
                tracing::error!("the raft log flusher thread panicked");
            }
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogIdOf<TypeConfig>> = self.reader.get_meta(KEY_LAST_PURGED)?;
        let handle = cf(self.db(), CF_LOG)?;
        let last = match self.db().iterator_cf(handle, IteratorMode::End).next() {
            None => None,
            Some(item) => {
                let (_, v) = item.map_err(io_err)?;
                Some(decode_entry(None, &v)?.log_id())
            }
        };
        Ok(LogState {
            last_log_id: last.or(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        self.put_meta(KEY_VOTE, vote)?;
        // The vote must be on disk before this returns: a node that forgets its vote may vote
        // twice in one term.
        let db = self.reader.db.clone();
        tokio::task::spawn_blocking(move || db.flush_wal(true).map_err(io_err))
            .await
            .map_err(io_err)??;
        Ok(())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        self.put_meta(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(self
            .reader
            .get_meta::<Option<LogIdOf<TypeConfig>>>(KEY_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let appended_at = Instant::now();
        let handle = cf(self.db(), CF_LOG)?;
        let mut batch = WriteBatch::default();
        let mut kept = Vec::new();
        for entry in entries {
            let bytes = encode(&entry)?;
            batch.put_cf(handle, index_key(entry.index()), &bytes);
            kept.push((entry, bytes.len()));
        }
        let count = kept.len();
        // Written before returning, so the entries are readable at once; durable only after
        // the flusher's fsync, which is when openraft hears of it.
        self.db().write(batch).map_err(io_err)?;
        {
            let mut cache = self.reader.cache();
            for (entry, bytes) in kept {
                cache.push(entry, bytes);
            }
        }
        self.flush_tx
            .send(PendingFlush {
                callback,
                entries: count,
                appended_at,
            })
            .await
            .map_err(|_| io_err("log flusher stopped"))
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index() + 1).unwrap_or(0);
        self.reader.cache().truncate_from(from);
        let handle = cf(self.db(), CF_LOG)?;
        self.db()
            .delete_range_cf(handle, index_key(from), index_key(u64::MAX))
            .map_err(io_err)?;
        // Also remove a possible entry at u64::MAX, which the exclusive range end leaves.
        self.db()
            .delete_cf(handle, index_key(u64::MAX))
            .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        // Record the purge point first: entries at or below it are ignored from then on, so a
        // crash between the two writes leaves a consistent log.
        self.put_meta(KEY_LAST_PURGED, &log_id)?;
        self.reader.cache().purge_to(log_id.index());
        let handle = cf(self.db(), CF_LOG)?;
        self.db()
            .delete_range_cf(handle, index_key(0), index_key(log_id.index() + 1))
            .map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::entry::RaftEntry;
    use openraft::testing::log_id;
    use openraft::type_config::TypeConfigExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_fsyncs_and_complete_only_after_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(crate::open_db(dir.path()).unwrap());
        let mut store = LogStore::new(db).unwrap();
        let stats = store.flush_stats();
        let appends = 500u64;
        let mut waiters = Vec::new();
        for i in 1..=appends {
            let (tx, rx) = TypeConfig::oneshot();
            let entry = EntryOf::<TypeConfig>::new_blank(log_id::<TypeConfig>(1, 1, i));
            store.append([entry], IOFlushed::signal(tx)).await.unwrap();
            waiters.push(rx);
        }
        for rx in waiters {
            rx.await.unwrap().unwrap();
        }
        let fsyncs = stats.fsyncs.load(Ordering::Relaxed);
        assert_eq!(
            stats.appends.load(Ordering::Relaxed),
            appends,
            "every append completed by a flush"
        );
        assert!(
            fsyncs * 4 <= appends,
            "{appends} appends took {fsyncs} fsyncs: no group commit"
        );
        let mut reader = store.get_log_reader().await;
        assert_eq!(
            reader.try_get_log_entries(1..=appends).await.unwrap().len() as u64,
            appends
        );
    }

    fn blank(term: u64, index: u64) -> EntryOf<TypeConfig> {
        EntryOf::<TypeConfig>::new_blank(log_id::<TypeConfig>(term, 1, index))
    }

    fn indexes(entries: &[EntryOf<TypeConfig>]) -> Vec<u64> {
        entries.iter().map(|e| e.index()).collect()
    }

    #[test]
    fn the_entry_cache_keeps_the_newest_contiguous_entries_within_its_bytes() {
        let mut c = EntryCache::default();
        let mib = 1 << 20;
        for i in 1..=40 {
            c.push(blank(1, i), mib);
        }
        let kept = (ENTRY_CACHE_BYTES_MAX / mib) as u64;
        assert_eq!(c.first_index(), Some(41 - kept));
        assert_eq!(c.bytes, ENTRY_CACHE_BYTES_MAX);
        assert!(c.get(5, &(5..10)).is_none(), "older than the cache");
        let first = 41 - kept;
        let got = c.get(first, &(first..=first + 3)).unwrap();
        assert_eq!(indexes(&got), (first..=first + 3).collect::<Vec<_>>());
        assert_eq!(indexes(&c.get(38, &(38..)).unwrap()), vec![38, 39, 40]);
        assert!(
            c.get(41, &(41..)).is_none(),
            "past the last entry: RocksDB answers"
        );
        c.truncate_from(30);
        assert_eq!(indexes(&c.get(28, &(28..)).unwrap()), vec![28, 29]);
        c.push(blank(2, 30), 10);
        assert_eq!(indexes(&c.get(29, &(29..)).unwrap()), vec![29, 30]);
        c.push(blank(2, 35), 10);
        assert_eq!(c.first_index(), Some(35), "a gap starts the cache afresh");
        assert_eq!(c.bytes, 10);
        c.purge_to(35);
        assert_eq!((c.first_index(), c.bytes), (None, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_through_the_cache_match_rocksdb_after_truncation_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(crate::open_db(dir.path()).unwrap());
        let mut store = LogStore::new(db.clone()).unwrap();
        async fn append(store: &mut LogStore, entries: Vec<EntryOf<TypeConfig>>) {
            let (tx, rx) = TypeConfig::oneshot();
            store.append(entries, IOFlushed::signal(tx)).await.unwrap();
            rx.await.unwrap().unwrap();
        }
        append(&mut store, (1..=100).map(|i| blank(1, i)).collect()).await;
        store
            .truncate_after(Some(log_id::<TypeConfig>(1, 1, 60)))
            .await
            .unwrap();
        let mut reader = store.get_log_reader().await;
        let after_truncation = reader.try_get_log_entries(55..=100).await.unwrap();
        assert_eq!(indexes(&after_truncation), (55..=60).collect::<Vec<_>>());
        append(&mut store, (61..=70).map(|i| blank(2, i)).collect()).await;
        store.purge(log_id::<TypeConfig>(1, 1, 20)).await.unwrap();
        let after_purge = reader.try_get_log_entries(10..=70).await.unwrap();
        assert_eq!(indexes(&after_purge), (21..=70).collect::<Vec<_>>());
        let cached = reader.try_get_log_entries(21..=70).await.unwrap();
        // A second store on the same database starts with an empty cache: RocksDB answers.
        let mut cold = LogStore::new(db).unwrap();
        let stored = cold
            .get_log_reader()
            .await
            .try_get_log_entries(21..=70)
            .await
            .unwrap();
        assert_eq!(indexes(&cached), (21..=70).collect::<Vec<_>>());
        assert_eq!(cached, stored);
        assert_eq!(cached[40].log_id(), log_id::<TypeConfig>(2, 1, 61));
    }
}
