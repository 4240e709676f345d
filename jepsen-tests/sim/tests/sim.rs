//! Deterministic simulation seeds for CI: each seed runs openraft with ticketd's types and the
//! real state machine on simulated disks and network under crashes (losing un-fsynced writes),
//! partitions and message loss, with the seat-sale workload; any violation or anomaly fails
//! with the seed. A seed runs twice to prove the replay is exact.
//!
//! `SIM_SEEDS=200 cargo nextest run --workspace -E 'binary(sim)'` runs more; `SIM_SEED=n` one.
//!
//! The sweep runs with the Raft configuration `ticketd node` ships. The simulation found that
//! openraft's `enable_leader_restore` (on by default there) is unsafe with storage that can lose
//! un-fsynced entries: a leader that loses them in a crash (power loss, not `kill -9`) and
//! restores its leadership without an election proposes new entries under log ids a follower
//! already holds for other entries (log matching broken; two entries can then be applied at one
//! index), and its stale commit index serves linearizable reads that miss acknowledged writes.
//! ticketd turns it off (`ticketd_raft::ENABLE_LEADER_RESTORE`); the last test keeps both the
//! finding and the fix honest.

use ticketd_sim::{self as sim, SimConfig};
use ticketd_workload::Workload;

fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![s];
    }
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    (1..=n).collect()
}

#[test]
fn simulation_seeds_find_no_violation() {
    let mut failures = Vec::new();
    for seed in seeds() {
        let nodes = if seed % 3 == 0 { 5 } else { 3 };
        let cfg = SimConfig {
            nodes,
            ops_per_client: 120,
            ..SimConfig::default()
        };
        let o = sim::run(seed, &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        eprintln!(
            "seed {seed}: {nodes} nodes, {} ms simulated, ok {} fail {} unknown {}, faults {:?}, violations {}, anomalies {}",
            o.sim_ms,
            o.report.ok,
            o.report.fail,
            o.report.info,
            o.faults,
            o.violations.len(),
            o.report.anomalies.len()
        );
        if !o.violations.is_empty() || !o.report.anomalies.is_empty() {
            failures.push(format!(
                "seed {seed}: violations {:?} anomalies {:?}",
                o.violations, o.report.anomalies
            ));
        }
        assert!(o.report.ok > 0, "seed {seed}: nothing succeeded");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_seed_replays_exactly() {
    let cfg = SimConfig::default();
    let a = sim::run(7, &cfg).expect("run 1");
    let b = sim::run(7, &cfg).expect("run 2");
    assert_eq!(
        a.history_digest, b.history_digest,
        "seed 7 gave two different histories: the simulation is not deterministic"
    );
    assert_eq!(a.history.len(), b.history.len());
    assert!(
        a.faults.values().sum::<u64>() > 0,
        "seed 7 injected no fault: pick a seed that does"
    );
}

#[test]
fn leader_restore_breaks_log_matching_and_linearizability_and_ticketd_runs_without_it() {
    // ticketd must not restore leadership without an election (see this file's header).
    const { assert!(!ticketd_raft::ENABLE_LEADER_RESTORE) };
    // Reproductions with leader restore on (openraft's default):
    //   ticketd-chaos sim --workload register --seed 36 --ops 300   -> log matching violated
    //   ticketd-chaos sim --workload register --seed 3 --ops 300    -> a stale linearizable read
    let cfg = SimConfig {
        ops_per_client: 300,
        leader_restore: None,
        workload: Workload::Register,
        ..SimConfig::default()
    };
    let o = sim::run(36, &cfg).expect("run");
    assert!(
        o.violations
            .iter()
            .any(|v| v.starts_with("log matching") || v.starts_with("state machine safety")),
        "seed 36 no longer shows the leader-restore violation (fixed in raft/, or the simulation \
         changed: find a new seed with `ticketd-chaos sim --workload register --count 100 --ops 300`): {:?}",
        o.violations
    );
    let o = sim::run(3, &cfg).expect("run");
    assert!(
        o.report
            .anomalies
            .iter()
            .any(|a| a.kind == "real-time-order"),
        "seed 3 no longer shows the stale read: {:?}",
        o.report.anomalies
    );
    // The same schedules with the configuration ticketd ships are clean: the setting is the cause.
    for seed in [36, 3] {
        let shipped = sim::run(
            seed,
            &SimConfig {
                leader_restore: Some(ticketd_raft::ENABLE_LEADER_RESTORE),
                ..cfg.clone()
            },
        )
        .expect("run");
        assert!(
            shipped.violations.is_empty() && shipped.report.anomalies.is_empty(),
            "seed {seed} with ticketd's configuration: {:?} {:?}",
            shipped.violations,
            shipped.report.anomalies
        );
    }
}
