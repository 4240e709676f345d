//! The parameters of one simulation.

use serde::{Deserialize, Serialize};
use ticketd_workload::Workload;

/// Parameters of one simulation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    /// Voters.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Ops per client.
    pub ops_per_client: usize,
    /// Faults on (crashes, partitions, loss).
    pub faults: bool,
    /// openraft's `enable_leader_restore`; `None` = openraft's default (true). The default here
    /// is what `ticketd node` runs with ([`ticketd_raft::ENABLE_LEADER_RESTORE`]).
    pub leader_restore: Option<bool>,
    /// What the clients do.
    pub workload: Workload,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            clients: 4,
            ops_per_client: 60,
            faults: true,
            leader_restore: Some(ticketd_raft::ENABLE_LEADER_RESTORE),
            workload: Workload::Sale,
        }
    }
}
