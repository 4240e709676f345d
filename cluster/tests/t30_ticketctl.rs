//! `ticketctl` against a real cluster: output formats and exit codes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ticketd_jepsen::cluster::{NodeOpts, TestCluster};

fn ctl(endpoints: &[String], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ticketctl_bin())
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .args(["--command-timeout-ms", "2000", "--total-timeout-ms", "8000"])
        .args(args)
        .output()
        .expect("run ticketctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticketctl_reports_status_moves_leadership_and_exits_with_distinct_codes(
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let eps = c.endpoints();
    c.client().write("t30", "k", &create_venue("v")).await?;

    phase("endpoint status as JSON names exactly one leader");
    let (code, out, err) = ctl(&eps, &["endpoint", "status", "-w", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().filter(|r| r["is_leader"] == true).count(), 1);

    phase("endpoint status as a table, etcd's columns");
    let (code, out, _) = ctl(&eps, &["endpoint", "status"]);
    assert_eq!(code, 0);
    for col in ["ENDPOINT", "IS LEADER", "RAFT TERM", "RAFT APPLIED INDEX"] {
        assert!(out.contains(col), "missing column {col}:\n{out}");
    }

    phase("member list, health");
    let (code, out, _) = ctl(&eps, &["member", "list", "-w", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out)?
            .as_array()
            .map(|a| a.len()),
        Some(3)
    );
    let (code, out, _) = ctl(&eps, &["endpoint", "health"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("is healthy").count(), 3);

    phase("leader transfer");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let to = (1..=3).find(|id| *id != leader).expect("a follower");
    let (code, _, err) = ctl(&eps, &["leader", "transfer", &to.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(c.wait_leader(Duration::from_secs(10)).await?, to);

    phase("snapshot trigger and metrics");
    let (code, out, err) = ctl(&eps[..1], &["snapshot", "trigger"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("snapshot at log index"));
    let (code, out, _) = ctl(&eps[..1], &["metrics"]);
    assert_eq!(code, 0);
    for m in [
        "ticketd_raft_term",
        "ticketd_raft_fsync_seconds",
        "ticketd_raft_entries_per_fsync",
        "ticketd_snapshots_built_total",
    ] {
        assert!(out.contains(m), "metrics lack {m}");
    }

    phase("exit codes: usage 2, unreachable 3, rejected 4");
    let (code, _, _) = ctl(&eps, &["member", "frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, _) = ctl(&eps, &["cluster", "init", "--members", "not-a-member"]);
    assert_eq!(code, 2);
    let (code, _, err) = ctl(&["127.0.0.1:1".to_string()], &["endpoint", "status"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = ctl(&eps, &["leader", "transfer", "99"]);
    assert_eq!(code, 4, "{err}");
    Ok(())
}
