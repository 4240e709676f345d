//! Deterministic simulation of the Raft layer: openraft with ticketd's payload and reply types
//! and the node's own state-machine adapter (`ticketd_raft::apply::Applier`, the real
//! `store::Machine` over the in-memory backend), on in-memory log storage and an in-memory
//! network, all on one paused-clock tokio thread with openraft's seeded RNG. Every choice (client ops, message delay
//! and loss, partitions, crashes, restarts, fsync timing) comes from the seed, so a failing seed
//! replays exactly: the same seed gives the same history, byte for byte.
//!
//! Modelled faults: crashes that lose every log write not yet fsynced (the log store completes
//! openraft's IO callback only when a simulated flush makes the writes durable, as the RocksDB
//! store does after its WAL fsync) and the state machine's un-snapshotted state (a restarted node
//! re-applies from its last snapshot); partitions (one node, minority/majority splits);
//! message loss (before delivery and of the reply after processing); message delay.
//!
//! Checked while it runs (the oracle): one log id names one entry on every node (log matching:
//! a leader never reuses an index of its leadership); no two nodes apply different entries at one
//! index (state machine safety). At the end: the history of client ops goes through the same
//! checkers as the real-process runs, replicas' digests included.
//!
//! Not modelled: the RocksDB log store, the snapshot file format and the gRPC network of
//! `raft/` (the simulation replaces them: its log is the fault model, writes held until a
//! simulated fsync and lost in a crash, which the store's `Backend` cannot express), the
//! node's digests of its state (replicas are compared by digest reads), disk corruption, clock
//! skew.

mod client;
mod config;
mod log;
mod nemesis;
mod network;
mod oracle;
pub mod simrt;
mod state_machine;
mod types;
mod world;

pub use config::SimConfig;
pub use types::SimTypes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::rt::AsyncRuntime;
use openraft::{Config, SnapshotPolicy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use ticketd_raft::NodeAddr;
use ticketd_store::Query;

use crate::client::{perform, run_client, sale_client, until_answered};
use crate::log::LogDisk;
use crate::nemesis::{run_nemesis, spawn_node};
use crate::network::{Net, NetState};
use crate::oracle::Oracle;
use crate::simrt::SimRt;
use crate::world::World;
use ticketd_checker::history::{Call, Cons, History, Line};
use ticketd_checker::{self as checker, Report};
use ticketd_workload::{self as workload, Shared, Workload};

/// What one simulation found.
#[derive(Debug, Clone, Serialize)]
pub struct SimOutcome {
    /// The seed.
    pub seed: u64,
    /// Violations found while running (election safety, state machine safety) and after.
    pub violations: Vec<String>,
    /// The history checkers' report.
    pub report: Report,
    /// SHA-256 of the history: equal for equal seeds (the determinism check).
    pub history_digest: String,
    /// The history.
    #[serde(skip)]
    pub history: Vec<Line>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Simulated ms.
    pub sim_ms: u64,
}

/// Runs one simulation on its own paused-clock runtime. The same seed gives the same outcome.
pub fn run(seed: u64, cfg: &SimConfig) -> anyhow::Result<SimOutcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let cfg = cfg.clone();
    rt.block_on(SimRt::scope(seed, simulate(seed, cfg)))
}

pub(crate) async fn simulate(seed: u64, cfg: SimConfig) -> anyhow::Result<SimOutcome> {
    let config = Arc::new(
        Config {
            cluster_name: "sim".into(),
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(64),
            max_in_snapshot_log_to_keep: 16,
            enable_pre_vote: Some(true),
            enable_leader_restore: cfg.leader_restore,
            ..Default::default()
        }
        .validate()?,
    );
    let ids: Vec<u64> = (1..=cfg.nodes).collect();
    let net: Net = Arc::new(Mutex::new(NetState {
        rafts: BTreeMap::new(),
        cut: BTreeSet::new(),
        loss: 0.0,
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_7477),
    }));
    let world = World {
        cfg: cfg.clone(),
        net,
        log_disks: ids
            .iter()
            .map(|i| (*i, Arc::new(Mutex::new(LogDisk::default()))))
            .collect(),
        sm_disks: ids
            .iter()
            .map(|i| (*i, Arc::new(Mutex::new(None))))
            .collect(),
        oracle: Arc::new(Mutex::new(Oracle::default())),
        config,
        incarnation: ids
            .iter()
            .map(|i| (*i, Arc::new(AtomicU64::new(0))))
            .collect(),
        lines: Arc::new(Mutex::new(Vec::new())),
        start: tokio::time::Instant::now(),
        violations: Arc::new(Mutex::new(Vec::new())),
    };
    world.record(Line::Meta {
        time_ns: 0,
        seed,
        // Log time is simulated time (ms since the start): the checker's clock starts at 0.
        config: {
            let mut c = serde_json::to_value(&cfg)?;
            c["start_unix_ms"] = serde_json::json!(0);
            c
        },
    });
    for id in &ids {
        spawn_node(&world, *id, seed ^ (id << 40)).await?;
    }
    let members: BTreeMap<u64, NodeAddr> = ids
        .iter()
        .map(|i| {
            (
                *i,
                NodeAddr {
                    addr: format!("sim-{i}"),
                },
            )
        })
        .collect();
    let (first, _) = world.handle(1).expect("node 1");
    first.initialize(members).await?;
    let world = Arc::new(world);

    let stop = Arc::new(AtomicU64::new(0));
    let faults = Arc::new(Mutex::new(BTreeMap::new()));
    let nem = cfg.faults.then(|| {
        SimRt::spawn(run_nemesis(
            world.clone(),
            seed,
            stop.clone(),
            faults.clone(),
        ))
    });
    let dts = 3;
    if cfg.workload == Workload::Sale {
        let mut op = 800_000_000u64;
        for (key, command) in workload::sale_setup(dts, cfg.clients) {
            let call = Call::Write {
                client_id: workload::SETUP_CLIENT.into(),
                key,
                command,
                via: None,
            };
            if until_answered(&world, 800_000, &mut op, &call, 100)
                .await
                .is_none()
            {
                anyhow::bail!("seed {seed}: setup write not answered: {call:?}");
            }
        }
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let clients: Vec<_> = (0..cfg.clients)
        .map(|i| match cfg.workload {
            Workload::Register => SimRt::spawn(run_client(world.clone(), i, seed)),
            Workload::Sale => {
                SimRt::spawn(sale_client(world.clone(), i, seed, dts, shared.clone()))
            }
        })
        .collect();
    for c in clients {
        c.await?;
    }
    stop.store(1, Ordering::SeqCst);
    if let Some(n) = nem {
        n.await?;
    }

    // Healed (the nemesis heals before it returns): wait for a leader, then final reads.
    let mut leader = None;
    for _ in 0..600 {
        if let Some(l) = world.leader_guess() {
            leader = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut violations: Vec<String> = Vec::new();
    match leader {
        None => violations.push("no leader 30 s after healing".into()),
        Some(l) => {
            // Every write of unknown fate resubmitted with its key, then every object read.
            let mut op = 900_000_000u64;
            let lines = world.lines.lock().expect("lines").clone();
            for call in workload::unsettled_writes(&lines) {
                until_answered(&world, 900_000, &mut op, &call, 20).await;
            }
            let lines = world.lines.lock().expect("lines").clone();
            for query in workload::final_queries(&lines) {
                let call = Call::Read {
                    query,
                    consistency: Cons::Linearizable,
                    node: None,
                    final_read: true,
                };
                until_answered(&world, 900_001, &mut op, &call, 20).await;
            }
            // Convergence: every node applies the leader's last log, then digests compare.
            let target = world
                .handle(l)
                .map(|(r, _)| r.metrics().borrow_watched().last_log_index.unwrap_or(0))
                .unwrap_or(0);
            for _ in 0..600 {
                let behind = world.alive().into_iter().any(|id| {
                    world
                        .handle(id)
                        .map(|(_, sm)| sm.query(&Query::Digest).1 < target)
                        .unwrap_or(false)
                });
                if !behind {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for id in world.alive() {
                op += 1;
                let call = Call::Read {
                    query: Query::Digest,
                    consistency: Cons::Local,
                    node: Some(id),
                    final_read: true,
                };
                perform(&world, 900_002, op, call, Some(id)).await;
            }
        }
    }
    let sim_ms = world.start.elapsed().as_millis() as u64;
    for id in world.alive() {
        if let Some((r, _)) = world.handle(id) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r.shutdown()).await;
        }
    }
    violations.extend(world.violations.lock().expect("violations").iter().cloned());
    violations.extend(
        world
            .oracle
            .lock()
            .expect("oracle")
            .violations
            .iter()
            .cloned(),
    );
    let lines = world.lines.lock().expect("lines").clone();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(serde_json::to_vec(l)?);
    }
    let history_digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let report = checker::check(&History::from_lines(lines.clone())?);
    let faults = faults.lock().expect("faults").clone();
    Ok(SimOutcome {
        seed,
        violations,
        report,
        history_digest,
        history: lines,
        faults,
        sim_ms,
    })
}
