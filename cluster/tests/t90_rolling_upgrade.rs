//! A rolling upgrade under a sale load: a 3-node cluster of this binary's version (2) is
//! upgraded one node at a time to the next version's build (feature `next-version`: binary
//! version 3, one more command, `Echo`, and log entries in the version 2 encoding once the
//! cluster is at 3).
//! The new command is refused until every node runs the new binary and the cluster version is
//! raised; the raise itself is refused before that; after it the command is applied and the
//! entries change encoding. The chaos checkers find nothing wrong in the load's history. A node
//! of version 2 restarted into the upgraded cluster stops with a clear message.
//!
//! The next version's binary is built apart and named by `TICKETD_NEXT_BIN` (scripts/test.sh,
//! and so CI, builds it before the tests; `scripts/upgrade-test.sh` builds it and runs this test
//! alone); without it the test says so and passes.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ticketd_chaos::runner;
use ticketd_checker as checker;
use ticketd_checker::history::{Call, Cons, History, Line, OpType, Recorder};
use ticketd_raft::client::{ClusterClient, RetryPolicy};
use ticketd_raft::pb;
use ticketd_store::Query;
use ticketd_testkit::cluster::{NodeOpts, TestCluster};
use ticketd_workload::{self as workload, dt_id, SaleClient, Seen, Shared};

/// ticketctl against every node of `c`, as its operator: (exit code, stdout, stderr).
fn ctl(c: &TestCluster, args: &[&str]) -> (i32, String, String) {
    operator_ctl(c, &c.endpoints(), (3000, 10000), args)
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        attempts_max: 8,
        attempt_timeout: Duration::from_millis(1500),
        total_deadline: Duration::from_secs(5),
        backoff: Duration::from_millis(50),
    }
}

struct Load {
    rec: Arc<Recorder>,
    client: ClusterClient,
    endpoints: Vec<(u64, String)>,
    singles: BTreeMap<u64, ClusterClient>,
}

impl Load {
    /// Runs `call` through the load's clients and records it, as the chaos runner does.
    async fn perform(&self, client: &ClusterClient, process: u64, call: Call) -> Line {
        runner::perform(
            &self.rec,
            client,
            process,
            call,
            &self.endpoints,
            &self.singles,
        )
        .await
    }
}

const CLIENTS: usize = 3;
const DTS: usize = 4;

/// One sale client, an op every `period`, on the dt `phase` names, until `stop`.
async fn client_loop(
    load: Arc<Load>,
    idx: usize,
    phase: Arc<Mutex<usize>>,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
) {
    let nodes: Vec<u64> = load.endpoints.iter().map(|(id, _)| *id).collect();
    let mut sc = SaleClient::new(idx, CLIENTS, 90, format!("upgrade-c{idx}"));
    let mut process = idx as u64;
    let mut tick = tokio::time::interval(Duration::from_millis(120));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let dt = dt_id(*phase.lock().unwrap());
        let call = sc.next(&dt, &shared.lock().unwrap(), &nodes);
        let line = load.perform(&load.client, process, call.clone()).await;
        sc.observe(
            &call,
            Seen::of(&line),
            workload::effect_index(&line),
            &mut shared.lock().unwrap(),
        );
        if !matches!(line, Line::Ok { .. } | Line::Fail { .. }) {
            // Its op may still be in flight: the client goes on as a new process.
            process += CLIENTS as u64;
        }
    }
}

/// Sends `Command::Echo` (a command of version 3, unknown to this test's own build) through
/// node `id`; the gRPC status of a refusal, or the reply's JSON.
async fn echo(c: &TestCluster, id: u64, key: &str) -> Result<String, tonic::Status> {
    let channels = ticketd_raft::channels::Channels::new(c.api_transport());
    let channel = channels
        .get_node(&c.addr(id), id)
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let reply = pb::client_client::ClientClient::new(channel)
        .write(pb::WriteRequest {
            client_id: "upgrade-test".into(),
            idempotency_key: key.into(),
            command_json: br#"{"Echo":{"text":"hello from version 3"}}"#.to_vec(),
            forwarded: false,
            format: 1,
        })
        .await?
        .into_inner();
    match reply.result {
        Some(pb::write_reply::Result::ReplyJson(j)) => Ok(String::from_utf8_lossy(&j).into()),
        other => Err(tonic::Status::unavailable(format!("{other:?}"))),
    }
}

/// Waits until node `id` runs again, has a leader and applied what the leader committed.
async fn caught_up(c: &TestCluster, id: u64) -> anyhow::Result<()> {
    let leader = c.wait_leader(Duration::from_secs(30)).await?;
    let target = c.status(leader).await?.committed_index;
    c.wait_applied(id, target, Duration::from_secs(30)).await?;
    Ok(())
}

/// Each node's (binary version, cluster version) as `ticketctl endpoint status -w json` shows.
fn versions(c: &TestCluster) -> Vec<(u64, u64)> {
    let (code, out, err) = ctl(c, &["-w", "json", "endpoint", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["binary_version"].as_u64().unwrap(),
                r["cluster_version"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Node `data_dir`'s log as this test's own build (version 2) reads it: the entries from
/// before the raise decode, in the version 1 encoding; the newest, written after it, are in
/// the version 2 encoding, which this build refuses, saying so.
async fn log_changed_encoding(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use openraft::storage::RaftLogStorage;
    use openraft::{EntryPayload, RaftLogReader};
    let db = Arc::new(ticketd_raft::open_db(&data_dir.join("db"))?);
    let mut store = ticketd_raft::log_store::LogStore::new(db)?;
    let state = store.get_log_state().await;
    let mut reader = store.get_log_reader().await;
    let first = state
        .as_ref()
        .ok()
        .and_then(|s| s.last_purged_log_id)
        .map_or(1, |l| l.index + 1);
    let old = reader.try_get_log_entries(first..first + 20).await?;
    assert!(!old.is_empty());
    for e in &old {
        if let EntryPayload::Normal(p) = &e.payload {
            assert_eq!(p.1, 1, "entry {} from before the raise", e.log_id.index);
        }
    }
    let refused = reader
        .try_get_log_entries(first..)
        .await
        .expect_err("the entries after the raise are of encoding 2")
        .to_string();
    assert!(
        refused.contains("a log entry encoding of version 2 is newer than this binary knows"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_under_load_gates_the_new_command_until_the_version_is_raised(
) -> anyhow::Result<()> {
    let Some(next) = std::env::var_os("TICKETD_NEXT_BIN").map(PathBuf::from) else {
        eprintln!(
            "skipped: TICKETD_NEXT_BIN (the next version's ticketd) is not set; \
             scripts/upgrade-test.sh builds it and runs this test"
        );
        return Ok(());
    };
    let started = Instant::now();
    let old = ticketd_bin();
    let mut c = TestCluster::start(&old, 3, NodeOpts::default()).await?;
    assert_eq!(versions(&c), vec![(2, 2); 3], "version 2 everywhere");

    phase("a sale load through every node");
    let dir = tempfile::tempdir()?;
    let history_path = dir.path().join("upgrade.history.jsonl");
    let rec = Arc::new(Recorder::create(&history_path)?);
    // The wall clock at the history's time 0: the checker bounds log time with it.
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - rec.now() as i64 / 1_000_000;
    rec.record(&Line::Meta {
        time_ns: 0,
        seed: 90,
        config: serde_json::json!({
            "test": "t90_rolling_upgrade",
            "start_unix_ms": start_unix_ms,
        }),
    });
    let load = Arc::new(Load {
        rec: rec.clone(),
        client: ClusterClient::new(c.endpoints(), policy(), c.api_transport()),
        endpoints: c.nodes().map(|n| (n.id, n.addr.clone())).collect(),
        singles: c
            .nodes()
            .map(|n| {
                let single = ClusterClient::new(vec![n.addr.clone()], policy(), c.api_transport());
                (n.id, single)
            })
            .collect(),
    });
    for (key, command) in workload::sale_setup(DTS, CLIENTS) {
        let call = Call::Write {
            client_id: workload::SETUP_CLIENT.into(),
            key,
            command,
            via: None,
        };
        let line = load.perform(&load.client, 999_999, call).await;
        assert!(matches!(line, Line::Ok { .. }), "setup: {line:?}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let dt_phase = Arc::new(Mutex::new(0usize));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client_loop(
                load.clone(),
                i,
                dt_phase.clone(),
                shared.clone(),
                stop.clone(),
            ))
        })
        .collect();

    phase("upgrade the nodes one at a time, the leader last");
    let leader = c.wait_leader(Duration::from_secs(20)).await?;
    let mut order: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    order.push(leader);
    for (step, &id) in order.iter().enumerate() {
        let st = c.stop(id, Duration::from_secs(20)).await?;
        assert!(st.success(), "node {id} stopped cleanly: {st:?}");
        c.set_node_bin(id, &next);
        c.restart(id)?;
        caught_up(&c, id).await?;
        *dt_phase.lock().unwrap() = step + 1;
        let s = c.status(id).await?;
        assert_eq!((s.binary_version, s.cluster_version), (3, 2), "node {id}");
        if step == 1 {
            phase("two of three upgraded: the new command and the raise are refused");
            // Through an upgraded leader, which knows the command and refuses it by version.
            let upgraded = order[0];
            let l = c.wait_leader(Duration::from_secs(20)).await?;
            if l != upgraded {
                let (code, out, err) = ctl(&c, &["leader", "transfer", &upgraded.to_string()]);
                assert_eq!(code, 0, "{out}{err}");
                c.wait_status(upgraded, "leads", Duration::from_secs(20), |s| s.is_leader)
                    .await?;
            }
            let refused = echo(&c, upgraded, "echo-early").await.unwrap_err();
            assert_eq!(
                refused.code(),
                tonic::Code::FailedPrecondition,
                "{refused:?}"
            );
            assert!(
                refused.message().contains("needs cluster version 3"),
                "{refused:?}"
            );
            // Through the node still of version 2: it does not know the command at all.
            let old_node = order[2];
            let refused = echo(&c, old_node, "echo-early-2").await.unwrap_err();
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
            let (code, out, err) = ctl(&c, &["cluster", "version", "--raise"]);
            assert_eq!(code, 4, "refused: {out}{err}");
            assert!(
                err.contains(&format!("node {old_node} runs binary version 2")),
                "{out}{err}"
            );
            let (code, out, err) = ctl(&c, &["-w", "json", "cluster", "version"]);
            assert_eq!(code, 0, "{out}{err}");
            let v: serde_json::Value = serde_json::from_str(&out)?;
            assert_eq!(v["cluster_version"], 2, "{out}");
            assert_eq!(v["supported"], 2, "{out}");
        }
    }

    phase("every node upgraded: raise the cluster version, then the new command applies");
    let (code, out, err) = ctl(&c, &["cluster", "version", "--raise"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("raised from 2 to 3"), "{out}");
    let leader = c.wait_leader(Duration::from_secs(20)).await?;
    for id in 1..=3 {
        caught_up(&c, id).await?;
    }
    assert_eq!(versions(&c), vec![(3, 3); 3], "version 3 everywhere");
    let applied = echo(&c, leader, "echo-late").await?;
    assert!(applied.contains("Echoed"), "{applied}");
    assert!(applied.contains("hello from version 3"), "{applied}");
    // The load goes on in entries of encoding 2 for a while.
    let more = c.status(leader).await?.committed_index + 50;
    c.wait_applied(leader, more, Duration::from_secs(60))
        .await?;
    stop.store(true, Ordering::Relaxed);
    for cl in clients {
        cl.await?;
    }

    phase("settle, read back, digest every replica and check the history");
    let final_client = ClusterClient::new(
        c.endpoints(),
        RetryPolicy {
            attempts_max: 20,
            attempt_timeout: Duration::from_secs(3),
            total_deadline: Duration::from_secs(30),
            ..Default::default()
        },
        c.api_transport(),
    );
    rec.flush()?;
    for call in workload::unsettled_writes(&History::load_lines(&history_path)?) {
        load.perform(&final_client, 1_000_000, call).await;
    }
    rec.flush()?;
    for query in workload::final_queries(&History::load_lines(&history_path)?) {
        let call = Call::Read {
            query,
            consistency: Cons::Linearizable,
            node: None,
            final_read: true,
        };
        load.perform(&final_client, 1_000_002, call).await;
    }
    let target = c.status(leader).await?.committed_index;
    for id in 1..=3 {
        c.wait_applied(id, target, Duration::from_secs(30)).await?;
    }
    for id in 1..=3 {
        let call = Call::Read {
            query: Query::Digest,
            consistency: Cons::Local,
            node: Some(id),
            final_read: true,
        };
        load.perform(&final_client, 1_000_001, call).await;
    }
    rec.flush()?;
    let h = History::load(&history_path)?;
    let report = checker::check(&h);
    let ops = h.ops.len();
    let ok = h.ops.iter().filter(|o| o.typ == OpType::Ok).count();
    eprintln!(
        "history: {ops} ops ({ok} ok, {} fail, {} unknown), anomalies: {}",
        report.fail,
        report.info,
        report.anomalies.len()
    );
    assert!(
        report.anomalies.is_empty(),
        "anomalies: {:#?}",
        report.anomalies
    );

    phase("a node of version 2 restarted into the upgraded cluster stops, saying why");
    let st = c.stop(3, Duration::from_secs(20)).await?;
    assert!(st.success(), "{st:?}");
    let data_dir = c.nodes().find(|n| n.id == 3).unwrap().data_dir.clone();
    log_changed_encoding(&data_dir).await?;
    c.set_node_bin(3, &old);
    c.restart(3)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(st) = c.reap_if_exited(3) {
            break st;
        }
        anyhow::ensure!(Instant::now() < deadline, "the old node kept running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exit.code(), Some(78), "{exit:?}");
    let log = std::fs::read_to_string(c.log_path(3).unwrap())?;
    assert!(
        log.contains("the state is at cluster version 3, newer than this binary knows"),
        "{}",
        c.logs_tail(20)
    );
    assert!(log.contains("upgrade this node's binary"));
    // The other two go on.
    let l = c.wait_leader(Duration::from_secs(20)).await?;
    assert_ne!(l, 3);
    eprintln!("rolling upgrade test: {:?}", started.elapsed());
    Ok(())
}
