//! A simulated node's state machine: the node's own adapter (`ticketd_raft::apply::Applier`)
//! over the in-memory backend, with snapshots kept as values. What the simulation adds is its
//! fault model (a crash loses everything applied since the last snapshot) and the oracle's
//! view of every applied entry.

use std::io;
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use ticketd_raft::apply::Applier;
use ticketd_store::{Backend, MemBackend, Query, QueryResult, WriteSet, COLUMN_FAMILIES};

use crate::oracle::Oracle;
use crate::types::{io_error, SimTypes};

/// A snapshot: every state column family and the position it reflects.
#[derive(Clone, Serialize, Deserialize)]
pub struct SnapshotData {
    records: Vec<(String, Vec<u8>, Vec<u8>)>,
}

/// A node's state-machine "disk": its last snapshot, what survives a crash.
pub(crate) type StateMachineDisk = Arc<Mutex<Option<(SnapshotMetaOf<SimTypes>, SnapshotData)>>>;

type SimApplier = Applier<SimTypes, MemBackend>;

/// The openraft instance of a simulated node.
pub(crate) type SimRaft = openraft::Raft<SimTypes, SimStateMachine>;

/// The state machine of one simulated node; clones share it.
#[derive(Clone)]
pub(crate) struct SimStateMachine {
    node: u64,
    applier: Arc<Mutex<SimApplier>>,
    /// The last snapshot: what survives a crash.
    disk: StateMachineDisk,
    oracle: Arc<Mutex<Oracle>>,
}

/// The state a snapshot holds, staged into a fresh in-memory backend as the node stages a
/// snapshot file (its records and the position they reflect), then opened as the node opens
/// its state.
fn open_snapshot(meta: &SnapshotMetaOf<SimTypes>, data: &SnapshotData) -> io::Result<SimApplier> {
    let backend = MemBackend::new();
    let mut writes = WriteSet::new();
    for (cf, key, value) in &data.records {
        let cf = COLUMN_FAMILIES
            .iter()
            .find(|known| **known == cf.as_str())
            .ok_or_else(|| io_error(format!("unknown column family {cf}")))?;
        writes.put(cf, key.clone(), value.clone());
    }
    if let Some(last) = &meta.last_log_id {
        SimApplier::meta_writes(&mut writes, last, Some(&meta.last_membership))?;
    }
    backend.write(&writes).map_err(io_error)?;
    Applier::open(backend)
}

impl SimStateMachine {
    /// The state machine as a (re)started node finds it: its last snapshot.
    pub(crate) fn open(
        node: u64,
        disk: StateMachineDisk,
        oracle: Arc<Mutex<Oracle>>,
    ) -> io::Result<Self> {
        let snapshot = disk.lock().expect("state machine disk lock").clone();
        let applier = match snapshot {
            None => Applier::open(MemBackend::new())?,
            Some((meta, data)) => open_snapshot(&meta, &data)?,
        };
        Ok(Self {
            node,
            applier: Arc::new(Mutex::new(applier)),
            disk,
            oracle,
        })
    }

    /// Answers a query from the applied state, with the applied index it reflects.
    pub(crate) fn query(&self, query: &Query) -> (QueryResult, u64) {
        self.applier.lock().expect("applier lock").query(query)
    }
}

impl RaftStateMachine<SimTypes> for SimStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<SimTypes>>, StoredMembershipOf<SimTypes>), io::Error> {
        let applier = self.applier.lock().expect("applier lock");
        let applied = applier.applied().clone();
        Ok((applied.last_applied, applied.membership))
    }

    async fn apply<Entries>(&mut self, mut entries: Entries) -> Result<(), io::Error>
    where
        Entries: Stream<Item = Result<EntryResponder<SimTypes>, io::Error>> + Unpin + OptionalSend,
    {
        let mut received = Vec::new();
        while let Some(item) = entries.try_next().await? {
            received.push(item);
        }
        {
            let mut oracle = self.oracle.lock().expect("oracle lock");
            for (entry, _) in &received {
                let log_id = entry.log_id();
                let leader = log_id.committed_leader_id();
                oracle.applied(
                    self.node,
                    log_id.index(),
                    leader.term,
                    leader.node_id,
                    format!("{:?}", entry.payload),
                );
            }
        }
        // The node's digests of its state (DigestState) are not modelled: the simulation
        // compares replicas through digest reads.
        let applied = self
            .applier
            .lock()
            .expect("applier lock")
            .apply(received, |_| {})?;
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
        meta: &SnapshotMetaOf<SimTypes>,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let installed = open_snapshot(meta, &snapshot)?;
        *self.applier.lock().expect("applier lock") = installed;
        *self.disk.lock().expect("state machine disk lock") = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<SimTypes, SnapshotData>>, io::Error> {
        Ok(self
            .disk
            .lock()
            .expect("state machine disk lock")
            .clone()
            .map(|(meta, snapshot)| SnapshotOf::<SimTypes, SnapshotData> { meta, snapshot }))
    }
}

impl RaftSnapshotBuilder<SimTypes> for SimStateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<SimTypes, SnapshotData>, io::Error> {
        let (meta, data) = {
            let applier = self.applier.lock().expect("applier lock");
            let mut records = Vec::new();
            for cf in COLUMN_FAMILIES {
                applier
                    .backend()
                    .scan(cf, &mut |key, value| {
                        records.push((cf.to_string(), key.to_vec(), value.to_vec()));
                        Ok(())
                    })
                    .map_err(io_error)?;
            }
            let applied = applier.applied();
            let meta = SnapshotMetaOf::<SimTypes> {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            };
            (meta, SnapshotData { records })
        };
        *self.disk.lock().expect("state machine disk lock") = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<SimTypes, SnapshotData> {
            meta,
            snapshot: data,
        })
    }
}
