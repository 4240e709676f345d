//! The adapter that applies committed entries to the ticket domain on RocksDB, and builds and
//! installs snapshots of it.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use rocksdb::{IteratorMode, WriteBatch, DB};
use ticketd_store::{
    Backend, Machine, MemBackend, Query, QueryResult, RocksBackend, WriteSet, COLUMN_FAMILIES,
};

use crate::codec::{decode, encode};
use crate::snapshot::{self, SnapshotFile, SnapshotWriter};
use crate::version::{self, ClusterVersion, BINARY_VERSION};
use crate::{TypeConfig, CF_SM_META};

const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn cf<'a>(db: &'a DB, name: &str) -> io::Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| io_err(format!("column family {name} missing")))
}

/// What has been applied: the last log id and the membership in force.
#[derive(Debug, Clone, Default)]
pub struct AppliedState {
    /// The last applied log id.
    pub last_applied: Option<LogIdOf<TypeConfig>>,
    /// The last applied membership.
    pub membership: StoredMembershipOf<TypeConfig>,
}

struct Inner {
    db: Arc<DB>,
    backend: RocksBackend,
    machine: RwLock<Machine>,
    applied: RwLock<AppliedState>,
    snapshot_dir: PathBuf,
    digests: Arc<crate::digest::Digests>,
    cluster: ClusterVersion,
}

/// The state machine of a node; clones share it.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

fn load_applied(db: &DB) -> io::Result<AppliedState> {
    let meta = cf(db, CF_SM_META)?;
    let last_applied = db
        .get_cf(meta, KEY_APPLIED)
        .map_err(io_err)?
        .map(|b| decode(&b))
        .transpose()?;
    let membership = db
        .get_cf(meta, KEY_MEMBERSHIP)
        .map_err(io_err)?
        .map(|b| decode(&b))
        .transpose()?
        .unwrap_or_default();
    Ok(AppliedState {
        last_applied,
        membership,
    })
}

impl StateMachine {
    /// Opens the state machine persisted in `db`; snapshots live in `snapshot_dir`.
    pub fn open(db: Arc<DB>, snapshot_dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&snapshot_dir)?;
        snapshot::remove_partial(&snapshot_dir)?;
        let backend = RocksBackend::new(db.clone());
        let machine = match Machine::open(&backend) {
            Ok(m) => m,
            Err(e @ ticketd_store::StoreError::VersionTooNew { .. }) => {
                let why = format!("this node's state: {e}");
                version::halt(why.clone());
                return Err(io_err(why));
            }
            Err(e) => return Err(io_err(e)),
        };
        let cluster = ClusterVersion::default();
        cluster.set(machine.cluster_version());
        let applied = load_applied(&db)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                backend,
                machine: RwLock::new(machine),
                applied: RwLock::new(applied),
                snapshot_dir,
                digests: Default::default(),
                cluster,
            }),
        })
    }

    /// The last applied log index (0 before anything was applied).
    pub fn applied_index(&self) -> u64 {
        self.applied_state()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0)
    }

    /// A copy of the applied state.
    pub fn applied_state(&self) -> AppliedState {
        self.inner
            .applied
            .read()
            .expect("applied lock poisoned")
            .clone()
    }

    /// Answers a query from the applied state, with the applied index it reflects.
    pub fn query(&self, q: &Query) -> (QueryResult, u64) {
        // Hold the machine lock while reading the applied index: apply updates both under it.
        let machine = self.inner.machine.read().expect("machine lock poisoned");
        let index = self.applied_index();
        (machine.query(q), index)
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

/// Whether the requests of one entry ask for a digest of the state as of that entry (a
/// `DigestState` applied for the first time); the leader's digests they announce
/// (`CheckDigest`) are added to `leader_digests`.
fn digest_commands(
    requests: &[ticketd_store::Request],
    replies: &[ticketd_store::Reply],
    leader_digests: &mut Vec<(u64, String)>,
) -> bool {
    let mut digest_here = false;
    for (req, reply) in requests.iter().zip(replies) {
        if reply.replayed || !matches!(reply.outcome, ticketd_store::Outcome::Done(_)) {
            continue;
        }
        match &req.command {
            ticketd_store::Command::DigestState {} => digest_here = true,
            ticketd_store::Command::CheckDigest { index, digest } => {
                leader_digests.push((*index, digest.clone()));
            }
            _ => {}
        }
    }
    digest_here
}

/// Why this binary cannot apply one of `entries` (the first such), if it cannot: an entry that
/// needs a version past this binary's is never applied, nor anything of its batch.
fn unsupported_entry(entries: &[EntryResponder<TypeConfig>]) -> Option<String> {
    entries.iter().find_map(|(entry, _)| {
        let EntryPayload::Normal(proposal) = &entry.payload else {
            return None;
        };
        let needs = proposal
            .0
            .iter()
            .map(ticketd_store::version::needed_version)
            .max()?;
        (needs > BINARY_VERSION).then(|| {
            format!(
                "log entry {} needs version {needs}, {} (binary version {BINARY_VERSION}); \
                 nothing of it is applied: upgrade this node's binary",
                entry.log_id().index,
                version::NEWER_THAN_BINARY
            )
        })
    })
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
        let mut ws = WriteSet::new();
        let mut responses = Vec::new();
        let mut last_applied = None;
        let mut last_membership = None;
        let mut received = Vec::new();
        while let Some(item) = entries.try_next().await? {
            received.push(item);
        }
        if let Some(why) = unsupported_entry(&received) {
            version::halt(why.clone());
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let applied_entries = received.len() as u64;
        let mut requests = 0u64;
        let started = std::time::Instant::now();
        {
            let mut machine = self.inner.machine.write().expect("machine lock poisoned");
            let mut leader_digests = Vec::new();
            for (entry, responder) in received {
                let log_id = entry.log_id();
                let reply = match &entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(proposal) => {
                        requests += proposal.0.len() as u64;
                        machine.apply_batch(log_id.index, &proposal.0, &mut ws)
                    }
                    EntryPayload::Membership(m) => {
                        last_membership = Some(StoredMembershipOf::<TypeConfig>::new(
                            Some(log_id),
                            m.clone(),
                        ));
                        Vec::new()
                    }
                };
                last_applied = Some(log_id);
                let digest_here = match &entry.payload {
                    EntryPayload::Normal(proposal) => {
                        digest_commands(&proposal.0, &reply, &mut leader_digests)
                    }
                    _ => false,
                };
                if digest_here {
                    // The digest covers exactly the state as of this entry: what is applied so
                    // far is written first, and the digest's snapshot is taken before the next
                    // entry's writes.
                    self.write_applied(&mut ws, log_id, last_membership.take())?;
                    crate::digest::spawn(
                        self.inner.db.clone(),
                        log_id.index,
                        self.inner.digests.clone(),
                    );
                }
                if let Some(r) = responder {
                    responses.push((r, reply));
                }
            }
            let Some(last) = last_applied else {
                return Ok(());
            };
            self.write_applied(&mut ws, last, last_membership)?;
            self.inner.cluster.set(machine.cluster_version());
            drop(machine);
            for (index, digest) in leader_digests {
                self.inner.digests.expect(index, &digest);
            }
        }
        metrics::histogram!("ticketd_sm_apply_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ticketd_sm_applied_entries_total").increment(applied_entries);
        metrics::counter!("ticketd_sm_applied_requests_total").increment(requests);
        for (responder, reply) in responses {
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
    /// Writes the applied requests' writes, the applied log id and a new membership in one
    /// RocksDB batch, and makes them the applied state. No fsync: the log entries are durable
    /// already, and the WAL keeps these writes in order behind them, so after a crash the
    /// state is some applied prefix and the rest is re-applied from the log.
    fn write_applied(
        &self,
        ws: &mut WriteSet,
        last: LogIdOf<TypeConfig>,
        membership: Option<StoredMembershipOf<TypeConfig>>,
    ) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        self.inner
            .backend
            .fill_batch(ws, &mut batch)
            .map_err(io_err)?;
        *ws = WriteSet::new();
        let meta = cf(&self.inner.db, CF_SM_META)?;
        batch.put_cf(meta, KEY_APPLIED, encode(&last)?);
        if let Some(m) = &membership {
            batch.put_cf(meta, KEY_MEMBERSHIP, encode(m)?);
        }
        self.inner.db.write(batch).map_err(io_err)?;
        let mut applied = self.inner.applied.write().expect("applied lock poisoned");
        applied.last_applied = Some(last);
        if let Some(m) = membership {
            applied.membership = m;
        }
        Ok(())
    }

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

        let mut current = self.inner.machine.write().expect("machine lock poisoned");
        db.write(batch).map_err(io_err)?;
        db.flush_wal(true).map_err(io_err)?;
        // The machine opened from the staged copy is the state just written.
        self.inner.cluster.set(machine.cluster_version());
        *current = machine;
        *self.inner.applied.write().expect("applied lock poisoned") = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        drop(current);

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
