//! A short, bounded chaos suite for CI: four runs of about 20 s of workload each (crashes and
//! pauses; membership changes and leader transfers; partitions, packet loss and latency when
//! network namespaces can be made; power losses that drop un-fsynced writes when a lazyfs layer can be
//! mounted; what could not be done is said in the output). Every history is checked; any anomaly
//! fails the test with the seed and the replay command.
//!
//! Needs the `ticketd` binary: `cargo build -p ticketd-cluster --bins` (a workspace test run
//! builds it), or `TICKETD_BIN`.

use std::path::PathBuf;
use std::time::Duration;

use ticketd_jepsen::nemesis::FaultKind;
use ticketd_jepsen::runner::{self, NetMode, RunConfig};
use ticketd_jepsen::workload::Workload;

fn ticketd_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TICKETD_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/chaos_short-HASH -> target/debug/ticketd
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("ticketd"))
        .expect("target dir")
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 % 1_000_000_007)
                .unwrap_or(1)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_chaos_suite_finds_no_anomaly() -> anyhow::Result<()> {
    let bin = ticketd_bin();
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p ticketd-cluster --bins` or set TICKETD_BIN",
        bin.display()
    );
    let out = tempfile::Builder::new().prefix("chaos-ci-").tempdir()?;
    let seed = seed();
    eprintln!("short chaos suite: seed {seed} (rerun with CHAOS_SEED={seed})");
    // The seat sale under crashes and partitions; the venue registers (with their per-key
    // linearizability check) under membership changes.
    let runs: [(&str, Workload, Vec<FaultKind>); 4] = [
        (
            "crash-pause",
            Workload::Sale,
            vec![
                FaultKind::KillOne,
                FaultKind::KillLeader,
                FaultKind::KillMajority,
                FaultKind::PauseLeader,
            ],
        ),
        (
            "membership",
            Workload::Register,
            vec![FaultKind::Membership, FaultKind::TransferLeader],
        ),
        (
            "network",
            Workload::Sale,
            vec![
                FaultKind::IsolateLeader,
                FaultKind::MajoritySplit,
                FaultKind::PacketLoss,
                FaultKind::Latency,
            ],
        ),
        (
            "power-loss",
            Workload::Sale,
            vec![FaultKind::LoseUnsynced, FaultKind::KillLeader],
        ),
    ];
    let mut summaries = Vec::new();
    for (i, (name, workload, faults)) in runs.into_iter().enumerate() {
        let cfg = RunConfig {
            name: name.to_string(),
            seed: seed + i as u64,
            nodes: 3,
            clients: 4,
            rate: 60.0,
            duration: Duration::from_secs(20),
            faults,
            fault_interval: Duration::from_secs(2),
            fault_hold_max: Duration::from_secs(4),
            net: NetMode::Auto,
            bin: bin.clone(),
            out_dir: out.path().to_path_buf(),
            key_window: 4,
            workload,
        };
        let s = runner::run(&cfg).await?;
        summaries.push(s);
    }
    let table = runner::table(&summaries);
    eprintln!("{table}");
    for s in &summaries {
        assert!(s.ok > 0, "{}: no op succeeded\n{table}", s.name);
        if !s.anomalies.is_empty() {
            let kept = out.keep();
            panic!(
                "{}: {} anomalies (seed {}); histories kept in {}\nreplay: {}\n{table}",
                s.name,
                s.anomalies.len(),
                s.seed,
                kept.display(),
                s.replay
            );
        }
    }
    Ok(())
}
