//! The short chaos suite in CI: the runs of `runner::SHORT_SUITE` (every fault kind, one to
//! three per run, about 60 s of workload each, `CHAOS_DURATION` to change it; 13-14 minutes). Partitions,
//! packet loss and latency need network namespaces, clock skew libfaketime, power losses a
//! lazyfs mount (root and /dev/fuse); a run without them says so in the output and marks those
//! faults skipped. Every history is checked; any anomaly fails the test with the seed and the
//! replay command.
//!
//! Needs the `ticketd` binary: `cargo build -p ticketd-cluster --bins` (a workspace test run
//! builds it), or `TICKETD_BIN`.

use std::path::PathBuf;
use std::time::Duration;

use ticketd_chaos::runner::{self, NetMode, RaftTiming, RunConfig, SHORT_SUITE};

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

/// Seconds of workload per run: `CHAOS_DURATION`, default 60 (as scripts/chaos-short.sh): each
/// fault kind about a minute.
fn duration_s() -> u64 {
    std::env::var("CHAOS_DURATION")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
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
    let mut summaries = Vec::new();
    for (i, run) in SHORT_SUITE.iter().enumerate() {
        let cfg = RunConfig {
            name: run.name.to_string(),
            seed: seed + i as u64,
            nodes: run.nodes,
            clients: 6,
            rate: 80.0,
            duration: Duration::from_secs(duration_s()),
            faults: run.faults.to_vec(),
            fault_interval: Duration::from_secs(2),
            fault_hold_max: Duration::from_secs(4),
            net: NetMode::Auto,
            bin: bin.clone(),
            out_dir: out.path().to_path_buf(),
            key_window: 4,
            workload: run.workload,
            timing: RaftTiming::default(),
            after_heal: None,
        };
        let s = runner::run(&cfg).await?;
        summaries.push(s);
    }
    let table = runner::table(&summaries);
    eprintln!("{table}");
    // The call-off path ran where its order shows: some run canceled a dt of two orders or
    // more (the sale runs call off every dt the sale leaves).
    assert!(
        summaries.iter().any(|s| s.money.call_offs_of_many > 0),
        "no run called off a dt with two orders or more\n{table}"
    );
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
