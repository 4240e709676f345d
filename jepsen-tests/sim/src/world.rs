//! What a simulation runs in: its nodes' disks, its network, its history.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use openraft::async_runtime::WatchReceiver;
use openraft::{Config, ServerState};

use crate::config::SimConfig;
use crate::log::LogDisk;
use crate::network::Net;
use crate::oracle::Oracle;
use crate::state_machine::SimRaft;
use crate::state_machine::{SimStateMachine, StateMachineDisk};
use ticketd_checker::history::Line;

pub(crate) struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) net: Net,
    pub(crate) log_disks: BTreeMap<u64, Arc<Mutex<LogDisk>>>,
    pub(crate) sm_disks: BTreeMap<u64, StateMachineDisk>,
    pub(crate) oracle: Arc<Mutex<Oracle>>,
    pub(crate) config: Arc<Config>,
    /// Bumped on each crash of a node: its flusher of the old incarnation stops.
    pub(crate) incarnation: BTreeMap<u64, Arc<AtomicU64>>,
    pub(crate) lines: Arc<Mutex<Vec<Line>>>,
    pub(crate) start: tokio::time::Instant,
    pub(crate) violations: Arc<Mutex<Vec<String>>>,
}

impl World {
    pub(crate) fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub(crate) fn record(&self, l: Line) {
        self.lines.lock().expect("lines lock").push(l);
    }

    pub(crate) fn alive(&self) -> Vec<u64> {
        self.net
            .lock()
            .expect("net lock")
            .rafts
            .keys()
            .copied()
            .collect()
    }

    pub(crate) fn handle(&self, id: u64) -> Option<(SimRaft, SimStateMachine)> {
        self.net.lock().expect("net lock").rafts.get(&id).cloned()
    }

    pub(crate) fn leader_guess(&self) -> Option<u64> {
        let n = self.net.lock().expect("net lock");
        n.rafts
            .iter()
            .find(|(_, (r, _))| r.metrics().borrow_watched().state == ServerState::Leader)
            .map(|(id, _)| *id)
    }
}
