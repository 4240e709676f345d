//! The node's state machine: the shared adapter ([`crate::apply::Applier`]) over RocksDB, and
//! snapshots of it as files.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{OptionalSend, RaftSnapshotBuilder};
use rocksdb::{IteratorMode, WriteBatch, DB};
use ticketd_store::{
    Backend, Machine, MemBackend, Query, QueryResult, RocksBackend, WriteSet, COLUMN_FAMILIES,
};

use crate::apply::{Applier, KEY_APPLIED, KEY_MEMBERSHIP};
use crate::codec::{decode, encode};
use crate::snapshot::{self, SnapshotFile, SnapshotWriter};
use crate::version::{self, ClusterVersion, BINARY_VERSION};
use crate::{TypeConfig, CF_SM_META};

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn cf<'a>(db: &'a DB, name: &str) -> io::Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| io_err(format!("column family {name} missing")))
}

/// What has been applied: the last log id and the membership in force.
pub type AppliedState = crate::apply::AppliedState<TypeConfig>;

struct Inner {
    db: Arc<DB>,
    applier: RwLock<Applier<TypeConfig, RocksBackend>>,
    snapshot_dir: PathBuf,
    digests: Arc<crate::digest::Digests>,
    cluster: ClusterVersion,
}

/// The state machine of a node; clones share it.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

impl StateMachine {
    /// Opens the state machine persisted in `db`; snapshots live in `snapshot_dir`.
    pub fn open(db: Arc<DB>, snapshot_dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&snapshot_dir)?;
        snapshot::remove_partial(&snapshot_dir)?;
        let applier = Applier::open(RocksBackend::new(db.clone()))?;
        let cluster = ClusterVersion::default();
        cluster.set(applier.machine().cluster_version());
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                applier: RwLock::new(applier),
                snapshot_dir,
                digests: Default::default(),
                cluster,
            }),
        })
    }

    /// The last applied log index (0 before anything was applied).
    pub fn applied_index(&self) -> u64 {
        self.applier().applied().index()
    }

    /// A copy of the applied state.
    pub fn applied_state(&self) -> AppliedState {
        self.applier().applied().clone()
    }

    /// Answers a query from the applied state, with the applied index it reflects (both read
    /// under one lock: apply updates both under it).
    pub fn query(&self, q: &Query) -> (QueryResult, u64) {
        self.applier().query(q)
    }

    fn applier(&self) -> std::sync::RwLockReadGuard<'_, Applier<TypeConfig, RocksBackend>> {
        self.inner.applier.read().expect("applier lock poisoned")
    }

    /// The cluster version as last applied here (shared: it follows the state machine).
    pub fn cluster_version(&self) -> &ClusterVersion {
        &self.inner.cluster
    }

    /// Where snapshot files are kept.
    pub fn snapshot_dir(&self) -> &PathBuf {
        &self.inner.snapshot_dir
    }

    /// A temporary path in the snapshot directory for a file being written.
    pub fn partial_path(&self, what: &str) -> PathBuf {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .snapshot_dir
            .join(format!("{what}-{}-{n}.part", std::process::id()))
    }
}

/// Records staged from a snapshot file per write set, bounding the copies held at once.
const STAGE_RECORDS_PER_WRITE: usize = 10_000;

/// Reads a snapshot file into memory and opens the state it holds: its checksum, its meta
/// (equal to `meta`), its column families (each one the state machine knows) and its state
/// (decoded, every invariant kept) are all checked. Nothing on disk is touched.
pub fn stage_snapshot(
    meta: &SnapshotMetaOf<TypeConfig>,
    path: &std::path::Path,
) -> io::Result<(MemBackend, Machine)> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let staged = MemBackend::new();
    let mut ws = WriteSet::new();
    let file_meta = snapshot::read_all(path, |name, key, value| {
        let Some(cf) = COLUMN_FAMILIES.iter().find(|c| **c == name) else {
            return Err(invalid(format!(
                "the snapshot carries column family {name}, which this binary (version {}) \
                 does not know: upgrade this node's binary",
                BINARY_VERSION
            )));
        };
        ws.put(cf, key, value);
        if ws.len() >= STAGE_RECORDS_PER_WRITE {
            staged.write(&ws).map_err(io_err)?;
            ws = WriteSet::new();
        }
        Ok(())
    })?;
    staged.write(&ws).map_err(io_err)?;
    if &file_meta != meta {
        return Err(invalid("snapshot meta differs from its file".into()));
    }
    let machine = Machine::open(&staged).map_err(|e| invalid(format!("snapshot refused: {e}")))?;
    Ok((staged, machine))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let s = StateMachine::applied_state(self);
        Ok((s.last_applied, s.membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut received = Vec::new();
        while let Some(item) = entries.try_next().await? {
            received.push(item);
        }
        let started = std::time::Instant::now();
        let applied = {
            let mut applier = self.inner.applier.write().expect("applier lock poisoned");
            let applied = applier.apply(received, |index| {
                // The digest's snapshot of the database is taken before the next entry's writes.
                crate::digest::spawn(self.inner.db.clone(), index, self.inner.digests.clone());
            })?;
            self.inner.cluster.set(applier.machine().cluster_version());
            applied
        };
        for (index, digest) in &applied.leader_digests {
            self.inner.digests.expect(*index, digest);
        }
        metrics::histogram!("ticketd_sm_apply_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ticketd_sm_applied_entries_total").increment(applied.entries);
        metrics::counter!("ticketd_sm_applied_requests_total").increment(applied.requests);
        for (responder, reply) in applied.responses {
            responder.send(reply);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let this = self.clone();
        let meta = meta.clone();
        let installed =
            tokio::task::spawn_blocking(move || this.install_blocking(&meta, &snapshot))
                .await
                .map_err(io_err)?;
        if let Err(e) = installed {
            // A snapshot this binary cannot read will be sent again and again: stop instead.
            if version::is_too_new(&e.to_string()) {
                version::halt(format!("a snapshot from the leader was refused: {e}"));
            }
            return Err(e);
        }
        metrics::counter!("ticketd_snapshots_installed_total").increment(1);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, SnapshotFile>>, io::Error> {
        let Some(path) = snapshot::list(&self.inner.snapshot_dir)?.pop() else {
            return Ok(None);
        };
        let meta = snapshot::read_meta(&path)?;
        Ok(Some(SnapshotOf::<TypeConfig, SnapshotFile> {
            meta,
            snapshot: SnapshotFile { path },
        }))
    }
}

impl StateMachine {
    /// This node's digests of its state at digest entries.
    pub fn digests(&self) -> &Arc<crate::digest::Digests> {
        &self.inner.digests
    }

    /// Installs a received snapshot. Everything is checked before anything is replaced: the
    /// file's checksum and meta, that it names only known column families, and that its
    /// state decodes and keeps every invariant (opened in memory first). A snapshot that
    /// fails any check leaves the node exactly as it was.
    fn install_blocking(
        &self,
        meta: &SnapshotMetaOf<TypeConfig>,
        file: &SnapshotFile,
    ) -> io::Result<()> {
        let (staged, machine) = stage_snapshot(meta, &file.path)?;
        let db = &self.inner.db;
        let mut batch = WriteBatch::default();
        // Clear every state column family, then fill it from the staged copy, in one batch.
        for name in COLUMN_FAMILIES {
            let handle = cf(db, name)?;
            for item in db.iterator_cf(handle, IteratorMode::Start) {
                let (k, _) = item.map_err(io_err)?;
                batch.delete_cf(handle, k);
            }
            staged
                .scan(name, &mut |k, v| {
                    batch.put_cf(handle, k, v);
                    Ok(())
                })
                .map_err(io_err)?;
        }
        drop(staged);
        let meta_cf = cf(db, CF_SM_META)?;
        match &meta.last_log_id {
            Some(l) => batch.put_cf(meta_cf, KEY_APPLIED, encode(l)?),
            None => batch.delete_cf(meta_cf, KEY_APPLIED),
        }
        batch.put_cf(meta_cf, KEY_MEMBERSHIP, encode(&meta.last_membership)?);

        let mut applier = self.inner.applier.write().expect("applier lock poisoned");
        db.write(batch).map_err(io_err)?;
        db.flush_wal(true).map_err(io_err)?;
        // The machine opened from the staged copy is the state just written.
        self.inner.cluster.set(machine.cluster_version());
        applier.replace_machine(machine, AppliedState::of_snapshot(meta));
        drop(applier);

        let final_path = self.inner.snapshot_dir.join(snapshot::file_name(meta));
        if file.path != final_path {
            std::fs::rename(&file.path, &final_path)?;
            snapshot::sync_dir(&final_path)?;
        }
        snapshot::prune(&self.inner.snapshot_dir)?;
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    fn build_blocking(&self) -> io::Result<SnapshotOf<TypeConfig, SnapshotFile>> {
        let started = std::time::Instant::now();
        let db = &self.inner.db;
        // Read before the view: the state in the view is at this cluster version or later, so
        // every binary that may receive the file reads its format.
        let format = version::snapshot_format(self.inner.cluster.get());
        // One RocksDB snapshot: the meta and every column family as of the same instant.
        let view = db.snapshot();
        let meta_cf = cf(db, CF_SM_META)?;
        let last_log_id: Option<LogIdOf<TypeConfig>> = view
            .get_cf(meta_cf, KEY_APPLIED)
            .map_err(io_err)?
            .map(|b| decode(&b))
            .transpose()?;
        let last_membership: StoredMembershipOf<TypeConfig> = view
            .get_cf(meta_cf, KEY_MEMBERSHIP)
            .map_err(io_err)?
            .map(|b| decode(&b))
            .transpose()?
            .unwrap_or_default();
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id,
            last_membership,
        };
        let tmp = self.partial_path("build");
        let mut w = SnapshotWriter::create_at(tmp, &meta, format)?;
        for name in COLUMN_FAMILIES {
            for item in view.iterator_cf(cf(db, name)?, IteratorMode::Start) {
                let (k, v) = item.map_err(io_err)?;
                w.record(name, &k, &v)?;
            }
        }
        let path = self.inner.snapshot_dir.join(snapshot::file_name(&meta));
        let records = w.finish(&path)?;
        snapshot::prune(&self.inner.snapshot_dir)?;
        let took = started.elapsed();
        metrics::histogram!("ticketd_snapshot_build_seconds").record(took.as_secs_f64());
        tracing::info!(last_log_id = ?meta.last_log_id, records, ms = took.as_millis() as u64, "built snapshot");
        Ok(SnapshotOf::<TypeConfig, SnapshotFile> {
            meta,
            snapshot: SnapshotFile { path },
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
        // On a thread of its own at a lower CPU priority: a build reads and writes the whole
        // state (seconds of CPU at a million records) and must not take it from the requests.
        let this = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("snapshot-build".into())
            .spawn(move || {
                crate::background::lower_priority(crate::background::BACKGROUND_NICE);
                let _ = tx.send(this.build_blocking());
            })?;
        let snap = rx
            .await
            .map_err(|_| io_err("the snapshot build thread ended without a result"))??;
        metrics::counter!("ticketd_snapshots_built_total").increment(1);
        Ok(snap)
    }
}
