//! A node's simulated log storage: what it reads, what survives a crash, and the fsync
//! that makes appends durable.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};

use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use crate::oracle::Oracle;
use crate::types::SimTypes;

#[derive(Clone, Default)]
pub(crate) struct LogData {
    pub(crate) vote: Option<VoteOf<SimTypes>>,
    pub(crate) committed: Option<LogIdOf<SimTypes>>,
    pub(crate) last_purged: Option<LogIdOf<SimTypes>>,
    pub(crate) log: BTreeMap<u64, EntryOf<SimTypes>>,
}

/// A node's log "disk": what it reads (`current`) and what survives a crash (`durable`).
#[derive(Default)]
pub(crate) struct LogDisk {
    pub(crate) current: LogData,
    pub(crate) durable: LogData,
    pub(crate) pending: Vec<IOFlushed<SimTypes>>,
}

#[derive(Clone)]
pub(crate) struct SimLog {
    pub(crate) node: u64,
    pub(crate) disk: Arc<Mutex<LogDisk>>,
    pub(crate) oracle: Arc<Mutex<Oracle>>,
}

impl RaftLogReader<SimTypes> for SimLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<SimTypes>>, io::Error> {
        let disk = self.disk.lock().expect("log lock");
        Ok(disk
            .current
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<SimTypes>>, io::Error> {
        Ok(self.disk.lock().expect("log lock").current.vote)
    }
}

impl RaftLogStorage<SimTypes> for SimLog {
    type LogReader = SimLog;

    async fn get_log_state(&mut self) -> Result<LogState<SimTypes>, io::Error> {
        let disk = self.disk.lock().expect("log lock");
        let last = disk.current.log.values().next_back().map(|e| e.log_id());
        Ok(LogState {
            last_log_id: last.or(disk.current.last_purged),
            last_purged_log_id: disk.current.last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<SimTypes>) -> Result<(), io::Error> {
        // Durable before returning, as `save_vote` fsyncs.
        let mut disk = self.disk.lock().expect("log lock");
        disk.current.vote = Some(*vote);
        disk.durable.vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<SimTypes>>,
    ) -> Result<(), io::Error> {
        self.disk.lock().expect("log lock").current.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<SimTypes>>, io::Error> {
        Ok(self.disk.lock().expect("log lock").current.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<SimTypes>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<SimTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut disk = self.disk.lock().expect("log lock");
        let mut oracle = self.oracle.lock().expect("oracle lock");
        for e in entries {
            let log_id = e.log_id();
            let leader = log_id.committed_leader_id();
            oracle.appended(
                self.node,
                e.index(),
                leader.term,
                leader.node_id,
                format!("{:?}", e.payload),
            );
            disk.current.log.insert(e.index(), e);
        }
        // Durable (and reported so) only at the next simulated fsync.
        disk.pending.push(callback);
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<SimTypes>>) -> Result<(), io::Error> {
        let from = last.map(|l| l.index() + 1).unwrap_or(0);
        let mut disk = self.disk.lock().expect("log lock");
        let _ = disk.current.log.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<SimTypes>) -> Result<(), io::Error> {
        let mut disk = self.disk.lock().expect("log lock");
        disk.current.last_purged = Some(log_id);
        let keep = disk.current.log.split_off(&(log_id.index() + 1));
        disk.current.log = keep;
        Ok(())
    }
}

/// The simulated fsync: everything written so far becomes durable, then the callbacks run.
pub(crate) fn flush(disk: &Mutex<LogDisk>) {
    let pending = {
        let mut disk = disk.lock().expect("log lock");
        // The vote is durable already (save_vote), so current and durable agree on it.
        disk.durable = disk.current.clone();
        std::mem::take(&mut disk.pending)
    };
    for cb in pending {
        cb.io_completed(Ok(()));
    }
}
