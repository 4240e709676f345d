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
