//! Microbenchmark of the Raft log's group commit: appends of entries carrying hold requests,
//! with a window of appends in flight, on the real disk; how many entries and holds one fsync
//! covers, and the time per entry.
//!
//! Run in release: `cargo run --release -p ticketd-raft --example log_bench [DIR]` (DIR on the
//! disk to measure, default a temporary directory under /var/tmp). Prints a table; asserts only
//! that every append completed after a flush.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use openraft::alias::EntryOf;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;
use ticketd_raft::log_store::LogStore;
use ticketd_raft::{Proposal, TypeConfig};
use ticketd_store::{Command, Request};

fn hold(i: u64) -> Request {
    Request {
        client_id: "u-3f9a0c1e".into(),
        idempotency_key: format!("load-1-{i}"),
        stamped_at_ms: 1_700_000_000_000,
        command: Command::HoldBestAvailable {
            hold_id: format!("h-{i:016x}{i:016x}"),
            dt_id: "stadium-tour-d1".into(),
            user_id: format!("buyer-{}", i % 20_000),
            tier_id: "silver".into(),
            quantity: 2,
            hold_ttl_ms: None,
        },
    }
}

/// Appends `entries` entries of `per_entry` holds, at most `window` unflushed at a time.
async fn run(dir: &std::path::Path, entries: u64, per_entry: u64, window: usize) -> String {
    let db = Arc::new(ticketd_raft::open_db(dir).expect("open db"));
    let mut store = LogStore::new(db).expect("log store");
    let stats = store.flush_stats();
    let mut waiting = std::collections::VecDeque::new();
    let start = Instant::now();
    for i in 1..=entries {
        let reqs = (0..per_entry).map(|k| hold(i * per_entry + k)).collect();
        let entry =
            EntryOf::<TypeConfig>::new_normal(log_id::<TypeConfig>(1, 1, i), Proposal::new(reqs));
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append([entry], IOFlushed::signal(tx))
            .await
            .expect("append");
        waiting.push_back(rx);
        if waiting.len() >= window {
            let rx = waiting.pop_front().expect("non-empty");
            rx.await.expect("flush answered").expect("flushed");
        }
    }
    for rx in waiting {
        rx.await.expect("flush answered").expect("flushed");
    }
    let secs = start.elapsed().as_secs_f64();
    let fsyncs = stats.fsyncs.load(Ordering::Relaxed).max(1);
    assert_eq!(stats.appends.load(Ordering::Relaxed), entries);
    format!(
        "| {window} | {per_entry} | {entries} | {:.0} | {:.0} | {fsyncs} | {:.1} | {:.1} | {:.1} |",
        entries as f64 / secs,
        (entries * per_entry) as f64 / secs,
        entries as f64 / fsyncs as f64,
        (entries * per_entry) as f64 / fsyncs as f64,
        secs * 1e6 / entries as f64,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let base = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).expect("bench dir");
    println!("| appends in flight | holds per entry | entries | entries/s | holds/s | fsyncs | entries per fsync | holds per fsync | µs per entry |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (window, per_entry, entries) in [
        (1, 1, 300),
        (16, 1, 3_000),
        (256, 1, 20_000),
        (4, 64, 1_000),
        (4, 256, 300),
    ] {
        let dir = tempfile::tempdir_in(&base).expect("temp dir");
        println!("{}", run(dir.path(), entries, per_entry, window).await);
    }
}
