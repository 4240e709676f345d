//! Replicas are compared where they run: `ticketctl endpoint hashkv` has every node digest its
//! state as of one log entry and prints the digests (all equal), and the leader's worker
//! digests periodically and announces its digest, against which every replica checks its own.

mod common;

use std::time::Duration;

use common::*;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};

/// ticketctl against `endpoints` of `c`, as its operator.
fn ctl(c: &TestCluster, endpoints: &[String], args: &[&str]) -> (i32, String, String) {
    operator_ctl(c, endpoints, (2000, 8000), args)
}

/// The value of a counter in a node's Prometheus text, 0 when absent.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_digest_one_index_and_check_against_the_leader() -> anyhow::Result<()> {
    // The leader's worker digests every second (the default is ten minutes).
    std::env::set_var("TICKETD_DIGEST_PERIOD_MS", "1000");
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    ticketd_cluster::demo::seed(&c.client(), now_ms, false).await?;
    c.wait_leader(Duration::from_secs(10)).await?;
    let eps = c.endpoints();

    phase("ticketctl endpoint hashkv: every node's digest of one index, all equal");
    let (code, out, err) = ctl(&c, &eps, &["-w", "json", "endpoint", "hashkv"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out)?;
    assert_eq!(rows.len(), 3, "{out}");
    let first = &rows[0];
    assert_eq!(first["digest"].as_str().map(str::len), Some(64), "{out}");
    for r in &rows {
        assert_eq!(r["state"], "computed", "{out}");
        assert_eq!(r["index"], first["index"], "one index: {out}");
        assert_eq!(r["digest"], first["digest"], "one digest: {out}");
    }

    phase("a later hashkv digests a later index, with a different digest");
    c.client()
        .write("t58", "v1", &create_venue("t58-v1"))
        .await?;
    let (code, out, err) = ctl(&c, &eps, &["-w", "json", "endpoint", "hashkv"]);
    assert_eq!(code, 0, "{out}{err}");
    let later: Vec<serde_json::Value> = serde_json::from_str(&out)?;
    assert!(later[0]["index"].as_u64() > first["index"].as_u64());
    assert_ne!(later[0]["digest"], first["digest"]);

    phase("the worker's periodic digests: every replica checks its own against the leader's");
    let client = c.admin_client();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for ep in &eps {
        let metrics_addr = client.status(ep).await?.metrics_addr;
        loop {
            let body = reqwest::get(format!("http://{metrics_addr}/metrics"))
                .await?
                .text()
                .await?;
            let checked = counter(&body, "ticketd_replica_digests_checked_total");
            assert_eq!(
                counter(&body, "ticketd_replica_digest_mismatches_total"),
                0.0,
                "{ep} diverged"
            );
            if checked >= 1.0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{ep} never checked a digest"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (code, out, err) = ctl(&c, &eps, &["endpoint", "health"]);
    assert_eq!(code, 0, "no node reports divergence: {out}{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_installs_a_snapshot_past_a_digest_entry_is_asked_again() -> anyhow::Result<()>
{
    let opts = NodeOpts {
        snapshot_every_entries: 20,
        logs_kept_after_snapshot: 5,
        ..NodeOpts::default()
    };
    let mut c = TestCluster::start(&ticketd_bin(), 3, opts).await?;
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let down = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");

    phase("a follower is down while a digest entry and enough entries for a snapshot commit");
    c.stop(down, Duration::from_secs(10)).await?;
    let up: Vec<String> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != down)
        .map(|id| c.addr(id))
        .collect();
    let admin = c.admin_client_for(&up);
    let index = admin.propose_digest().await?;
    for i in 0..60 {
        let key = format!("t58-snap-{i}");
        c.client().write("t58", &key, &create_venue(&key)).await?;
    }
    c.wait_status(
        leader,
        "a snapshot past the digest entry, the log purged past it",
        Duration::from_secs(30),
        |s| s.snapshot_index > index && s.purged_index > index,
    )
    .await?;

    phase("back, it installs the snapshot: it will never digest that entry");
    c.respawn(down)?;
    c.wait_status(
        down,
        "the leader's snapshot installed",
        Duration::from_secs(30),
        |s| s.snapshot_index > index,
    )
    .await?;
    let all = c.admin_client_for(&c.endpoints());
    let started = std::time::Instant::now();
    let (answers, skipped) = all.digests_at(index, Duration::from_secs(30)).await;
    assert!(skipped, "{answers:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a skipped entry is not waited for: {:?}",
        started.elapsed()
    );
    for (ep, a) in &answers {
        let state = a.as_ref().map(|s| s.state).unwrap_or(-1);
        let want = if *ep == c.addr(down) {
            ticketd_raft::pb::DigestState::DigestUnknown
        } else {
            ticketd_raft::pb::DigestState::DigestComputed
        };
        assert_eq!(state, want as i32, "{ep}: {answers:?}");
    }

    phase("hashkv proposes a new entry, which every node digests");
    let (code, out, err) = ctl(&c, &c.endpoints(), &["-w", "json", "endpoint", "hashkv"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out)?;
    assert_eq!(rows.len(), 3, "{out}");
    for r in &rows {
        assert_eq!(r["state"], "computed", "{out}");
        assert_eq!(r["digest"], rows[0]["digest"], "{out}");
        assert!(r["index"].as_u64() > Some(index), "{out}");
    }
    Ok(())
}
