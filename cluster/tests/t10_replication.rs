//! A 3-node cluster of real processes: election, writes through any node, linearizable reads
//! through every node, leader failure and recovery from disk.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ticketd_raft::client::ClusterClient;
use ticketd_store::Outcome;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_any_node_is_read_linearizably_through_every_node() -> anyhow::Result<()> {
    phase("start 3 nodes, init, elect");
    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;

    phase("write through each node in turn (followers forward to the leader)");
    let mut last_index = 0;
    for id in 1..=3u64 {
        let client = c.client_for(&[c.addr(id)]);
        let w = client
            .write("t10", &format!("k{id}"), &create_venue(&format!("v{id}")))
            .await?;
        assert!(
            matches!(w.reply.outcome, Outcome::Done(_)),
            "write via node {id}: {:?}",
            w.reply
        );
        assert!(w.log_index > last_index, "log indexes grow");
        last_index = w.log_index;
    }

    phase("a linearizable read through every node returns every write");
    for id in 1..=3u64 {
        for v in 1..=3u64 {
            let r = c
                .read_linearizable_at(id, &get_venue(&format!("v{v}")))
                .await?;
            let venue = venue(&r.result).unwrap_or_else(|| panic!("node {id} lacks venue v{v}"));
            assert_eq!(venue.venue_id, format!("v{v}"));
            assert!(r.applied_index >= venue.created_index);
        }
    }
    Ok(())
}

/// Creates venue `id` (its id also the idempotency key), which must be done; its log index.
async fn venue_created(client: &ClusterClient, id: &str) -> anyhow::Result<u64> {
    let w = client.write("t10", id, &create_venue(id)).await?;
    assert!(
        matches!(w.reply.outcome, Outcome::Done(_)),
        "{id}: {:?}",
        w.reply
    );
    Ok(w.log_index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_new_leader_writes_go_on_restarted_node_catches_up() -> anyhow::Result<()> {
    let mut c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let client = c.client();
    let before = client
        .write("t10", "before", &create_venue("before"))
        .await?;

    phase("kill -9 the leader");
    let old = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(old)?;
    let killed_at = Instant::now();
    let new = c.wait_leader(Duration::from_secs(10)).await?;
    let failover = killed_at.elapsed();
    eprintln!("new leader {new} after {failover:?}");
    assert_ne!(new, old);

    phase("writes go on");
    let mut last = before.log_index;
    for i in 0..20 {
        last = venue_created(&client, &format!("after{i}")).await?;
    }

    phase("the new leader retries the dead node at its backoff's pace, not in a loop");
    // Every failed replication attempt logs a warning naming the RPC error. With a backoff of
    // 100 ms, 2 s of writes with the node dead make a few dozen; retrying at once made tens of
    // thousands a second.
    let refusals = |c: &TestCluster| {
        std::fs::read_to_string(c.log_path(new).expect("leader log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("RPCError"))
            .count()
    };
    let before_window = refusals(&c);
    let window = Instant::now();
    let mut i = 0;
    while window.elapsed() < Duration::from_secs(2) {
        last = venue_created(&client, &format!("dead{i}")).await?;
        i += 1;
    }
    let logged = refusals(&c) - before_window;
    eprintln!("{i} writes in 2 s with node {old} dead; {logged} replication errors logged");
    assert!(
        logged <= 200,
        "{logged} replication errors logged in 2 s towards a dead node: no backoff"
    );

    phase("the killed node restarts from its disk and catches up");
    c.restart(old)?;
    c.wait_applied(old, last, Duration::from_secs(20)).await?;
    let s = c.status(old).await?;
    assert!(!s.is_leader || new == old);
    for key in ["before", "after0", "after19"] {
        let r = c.read_linearizable_at(old, &get_venue(key)).await?;
        assert!(
            venue(&r.result).is_some(),
            "restarted node {old} lacks {key}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_nodes_killed_mid_writes_lose_no_acknowledged_write() -> anyhow::Result<()> {
    let mut c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;

    phase("4 writers write until the cluster dies under them");
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<String>(10_000);
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = c.client();
        let tx = ack_tx.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let id = format!("w{w}-{i}");
                match client.write("t10", &id, &create_venue(&id)).await {
                    Ok(r) if matches!(r.reply.outcome, Outcome::Done(_)) => {
                        if tx.send(id).await.is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }));
    }
    drop(ack_tx);
    // Let some writes be acknowledged, then kill every node at once.
    let mut acked = Vec::new();
    while acked.len() < 50 {
        acked.push(ack_rx.recv().await.expect("writers acknowledge"));
    }
    for id in 1..=3 {
        c.kill(id)?;
    }
    for w in writers {
        let _ = w.await;
    }
    while let Ok(id) = ack_rx.try_recv() {
        acked.push(id);
    }
    eprintln!("{} writes acknowledged before the kill", acked.len());

    phase("restart all three: every acknowledged write is there");
    for id in 1..=3 {
        c.restart(id)?;
    }
    let leader = c.wait_leader(Duration::from_secs(20)).await?;
    let client = c.client();
    for id in &acked {
        let r = client
            .read(
                &get_venue(id),
                ticketd_raft::client::Consistency::Linearizable,
            )
            .await?;
        assert!(
            venue(&r.result).is_some(),
            "acknowledged write {id} lost (leader {leader})"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_retried_with_same_key_after_leader_kill_is_applied_once() -> anyhow::Result<()> {
    let mut c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let client = c.client();

    phase("write through the leader, then kill it");
    let first = client.write("t10", "once", &create_venue("once")).await?;
    assert!(!first.reply.replayed);
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    c.kill(leader)?;

    phase("retry with the same key on the new leader: the first outcome, not a second application");
    let again = client.write("t10", "once", &create_venue("once")).await?;
    assert!(
        again.reply.replayed,
        "the retry must be recognized: {:?}",
        again.reply
    );
    assert_eq!(again.reply.index, first.reply.index);
    assert_eq!(again.reply.outcome, first.reply.outcome);
    assert!(
        again.log_index > first.log_index,
        "the retry travelled through the log again"
    );

    let r = client
        .read(
            &get_venue("once"),
            ticketd_raft::client::Consistency::Linearizable,
        )
        .await?;
    assert_eq!(
        venue(&r.result).expect("venue").created_index,
        first.reply.index
    );

    phase(
        "a write in flight while its leader dies: retried with its key until known, applied once",
    );
    let new_leader = c.wait_leader(Duration::from_secs(10)).await?;
    let writer = {
        let client = c.client();
        tokio::spawn(async move {
            client
                .write("t10", "inflight", &create_venue("inflight"))
                .await
        })
    };
    c.kill(new_leader)?;
    c.restart(leader)?;
    let outcome = writer.await?;
    let settled = match outcome {
        Ok(w) => w,
        Err(e) => {
            eprintln!("in-flight write ended {e}; retrying with its key");
            client
                .write("t10", "inflight", &create_venue("inflight"))
                .await?
        }
    };
    let r = client
        .read(
            &get_venue("inflight"),
            ticketd_raft::client::Consistency::Linearizable,
        )
        .await?;
    let v = venue(&r.result).expect("in-flight venue exists");
    assert_eq!(
        v.created_index, settled.reply.index,
        "exactly one application, the one every reply names"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_batch_calls_through_a_follower_and_keep_their_own_outcomes(
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use ticketd_raft::client::{ClientError, WriteBatching};

    let c = TestCluster::start(&ticketd_bin(), 3, NodeOpts::default()).await?;
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");

    phase("300 concurrent writes through a follower, coalesced by one client");
    let client = Arc::new(
        c.client_for(&[c.addr(follower)])
            .with_write_batching(WriteBatching::default()),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300u32 {
        let client = client.clone();
        tasks.spawn(async move {
            // Every 10th write resubmits the one before it (same key, same command).
            let n = if i % 10 == 9 { i - 1 } else { i };
            let w = client
                .write(
                    "t10-batch",
                    &format!("b{n}"),
                    &create_venue(&format!("bv{n}")),
                )
                .await;
            (n, w)
        });
    }
    // An invalid request (no idempotency key) in the same stream is refused alone.
    let invalid = {
        let client = client.clone();
        tokio::spawn(async move { client.write("t10-batch", "", &create_venue("nokey")).await })
    };
    let mut outcomes: std::collections::BTreeMap<u32, Vec<_>> = Default::default();
    let mut positions = std::collections::BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let (n, w) = r?;
        let w = w?;
        assert!(
            matches!(w.reply.outcome, Outcome::Done(_)),
            "write b{n}: {:?}",
            w.reply
        );
        positions.insert((w.log_index, w.log_seq));
        outcomes.entry(n).or_default().push(w.reply.outcome);
    }
    assert_eq!(outcomes.len(), 270, "270 distinct writes");
    for (n, o) in &outcomes {
        assert!(o.windows(2).all(|p| p[0] == p[1]), "b{n}: {o:?}");
    }
    assert!(
        positions.len() >= 270,
        "distinct writes have distinct positions"
    );
    assert!(
        matches!(invalid.await?, Err(ClientError::Rejected(_))),
        "a write without a key is refused"
    );
    let stats = client.batch_stats().expect("batching is on");
    let (calls, writes) = (
        stats.calls.load(Ordering::Relaxed),
        stats.writes.load(Ordering::Relaxed),
    );
    eprintln!("{writes} writes in {calls} WriteBatch calls");
    assert_eq!(writes, 301);
    assert!(calls * 3 <= writes, "{writes} writes took {calls} calls");

    phase("every write is on the leader");
    for n in outcomes.keys() {
        let r = c
            .read_linearizable_at(leader, &get_venue(&format!("bv{n}")))
            .await?;
        assert!(venue(&r.result).is_some(), "bv{n} missing");
    }
    Ok(())
}
