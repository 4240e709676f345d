//! Membership under a purged log, and quorum arithmetic with 5 nodes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ticketd_raft::client::{AdminOp, ClientError, ClusterClient, Consistency, RetryPolicy};
use ticketd_store::Outcome;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_added_after_purge_gets_snapshot_is_promoted_then_a_node_is_removed(
) -> anyhow::Result<()> {
    // Keep no log behind a snapshot, so a new member cannot be fed from the log.
    let opts = NodeOpts {
        logs_kept_after_snapshot: 0,
        snapshot_every_entries: 100_000,
        ..NodeOpts::default()
    };
    let mut c = TestCluster::start(&ticketd_bin(), 3, opts).await?;
    let client = c.client();
    let admin = c.admin_client();

    phase("write 200 entries, snapshot and purge on every node");
    let mut last = 0;
    for i in 0..200 {
        last = client
            .write("t20", &format!("k{i}"), &create_venue(&format!("v{i}")))
            .await?
            .log_index;
    }
    for id in 1..=3 {
        c.wait_applied(id, last, Duration::from_secs(10)).await?;
        admin.trigger_snapshot(&c.addr(id)).await?;
    }
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let s = c
        .wait_status(leader, "log purged", Duration::from_secs(20), |s| {
            s.purged_index >= last
        })
        .await?;
    assert!(s.snapshot_index >= last);

    phase("node 4 joins as a learner and is fed a snapshot");
    c.add_node(4)?;
    admin
        .admin_on_leader(AdminOp::AddLearner {
            id: 4,
            addr: c.addr(4),
        })
        .await?;
    let s4 = c.wait_applied(4, last, Duration::from_secs(30)).await?;
    assert!(s4.is_learner);
    assert!(
        s4.snapshot_index >= last,
        "learner state came from a snapshot: {s4:?}"
    );

    phase("promote it; it serves linearizable reads");
    admin.admin_on_leader(AdminOp::Promote(4)).await?;
    c.wait_status(4, "voter", Duration::from_secs(10), |s| !s.is_learner)
        .await?;
    for key in ["v0", "v199"] {
        let r = c.read_linearizable_at(4, &get_venue(key)).await?;
        assert!(venue(&r.result).is_some(), "node 4 lacks {key}");
    }

    phase("remove a node that is not the leader; the cluster goes on");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let victim = (1..=3).find(|id| *id != leader).expect("a follower");
    admin.admin_on_leader(AdminOp::Remove(victim)).await?;
    c.wait_status(leader, "member removed", Duration::from_secs(10), |s| {
        s.members.iter().all(|m| m.id != victim)
    })
    .await?;
    c.kill(victim)?;
    let w = client
        .write("t20", "after-remove", &create_venue("after-remove"))
        .await?;
    assert!(matches!(w.reply.outcome, Outcome::Done(_)));
    let r = c
        .read_linearizable_at(4, &get_venue("after-remove"))
        .await?;
    assert!(venue(&r.result).is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_write_with_two_down_and_fail_clearly_with_three_down() -> anyhow::Result<()> {
    let mut c = TestCluster::start(&ticketd_bin(), 5, NodeOpts::default()).await?;
    let client = c.client();
    client.write("t20", "warm", &create_venue("warm")).await?;

    phase("two nodes down, the leader among them: writes go on");
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let other = (1..=5).find(|id| *id != leader).expect("another node");
    c.kill(leader)?;
    c.kill(other)?;
    c.wait_leader(Duration::from_secs(15)).await?;
    let w = client
        .write("t20", "two-down", &create_venue("two-down"))
        .await?;
    assert!(matches!(w.reply.outcome, Outcome::Done(_)));

    phase("a third node down: a write fails at its deadline with a clear error, no hang");
    let third = c.running()[0];
    c.kill(third)?;
    let short = ClusterClient::new(
        c.endpoints(),
        RetryPolicy {
            attempt_timeout: Duration::from_secs(2),
            total_deadline: Duration::from_secs(6),
            ..Default::default()
        },
        c.api_transport(),
    );
    let started = Instant::now();
    let err = short
        .write("t20", "three-down", &create_venue("three-down"))
        .await
        .expect_err("no quorum: the write cannot commit");
    let took = started.elapsed();
    eprintln!("failed after {took:?}: {err}");
    assert!(
        took < Duration::from_secs(12),
        "bounded by the client's deadline, took {took:?}"
    );
    assert!(
        matches!(err, ClientError::Unknown(_) | ClientError::Unreachable(_)),
        "a write that may be in a log is reported unknown, never failed: {err}"
    );

    phase("a quorum again: the write's key settles its outcome exactly once");
    c.restart(third)?;
    c.wait_leader(Duration::from_secs(20)).await?;
    let settled = client
        .write("t20", "three-down", &create_venue("three-down"))
        .await?;
    let r = client
        .read(&get_venue("three-down"), Consistency::Linearizable)
        .await?;
    assert_eq!(
        venue(&r.result).expect("venue").created_index,
        settled.reply.index
    );
    Ok(())
}
