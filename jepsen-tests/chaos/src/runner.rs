//! One chaos run: start a cluster, run concurrent clients at a set rate for a bounded time while
//! the nemesis injects faults, heal, run final reads, write the history, check it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use ticketd_raft::client::{ClientError, ClusterClient, Consistency, RetryPolicy};
use ticketd_raft::tls::Transport;
use ticketd_store::{Command, Query};

use crate::cluster::{NodeOpts, TestCluster};
use crate::nemesis::{placement, Env, FaultCounts, FaultKind, Nemesis};
use crate::net::Netns;
use ticketd_checker::history::{
    read_pos, write_pos, Call, Cons, History, Line, OpType, Recorder, Ret,
};
use ticketd_checker::{self as checker, Anomaly};
use ticketd_workload::{self as workload, dt_id, SaleClient, Seen, Shared, Workload};

/// How nodes are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetMode {
    /// Namespaces when they can be made, else loopback (said in the output).
    Auto,
    /// Namespaces or fail.
    Netns,
    /// Loopback ports; no network faults.
    Loopback,
}

/// One run of the short suite: its name, cluster size, workload and the fault kinds it draws
/// from.
#[derive(Debug, Clone, Copy)]
pub struct SuiteRun {
    /// Name (file prefix).
    pub name: &'static str,
    /// 3 or 5 (the ring needs 5).
    pub nodes: u64,
    /// What the clients do.
    pub workload: Workload,
    /// The fault kinds.
    pub faults: &'static [FaultKind],
}

/// The short chaos suite, run by CI (`tests/chaos_short.rs`) and `scripts/chaos-short.sh`:
/// every fault kind in some run (a test checks it), one to three kinds per run.
pub const SHORT_SUITE: &[SuiteRun] = {
    use FaultKind::*;
    use Workload::{Register, Sale};
    const fn run(
        name: &'static str,
        nodes: u64,
        workload: Workload,
        faults: &'static [FaultKind],
    ) -> SuiteRun {
        SuiteRun {
            name,
            nodes,
            workload,
            faults,
        }
    }
    &[
        run("kill-one", 3, Sale, &[KillOne]),
        run("kill-leader", 3, Sale, &[KillLeader]),
        run("kill-majority", 3, Sale, &[KillMajority]),
        run("pause", 3, Sale, &[PauseOne, PauseLeader]),
        run("membership", 3, Register, &[Membership, TransferLeader]),
        run("isolate", 3, Sale, &[IsolateOne, IsolateLeader, OneWay]),
        run("split-ring", 5, Sale, &[MajoritySplit, Ring]),
        run("packet-loss", 3, Sale, &[PacketLoss]),
        run("latency", 3, Sale, &[Latency]),
        run("clock-skew", 3, Sale, &[ClockSkew]),
        run("lose-unsynced", 3, Sale, &[LoseUnsynced]),
    ]
};

/// Parameters of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Name (file prefix).
    pub name: String,
    /// The seed of the fault schedule and of every client's choices.
    pub seed: u64,
    /// 3 or 5.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Target ops per second over all clients.
    pub rate: f64,
    /// Workload time (faults happen inside it).
    pub duration: Duration,
    /// Fault kinds to draw from (empty: none).
    pub faults: Vec<FaultKind>,
    /// Mean quiet time between faults.
    pub fault_interval: Duration,
    /// Longest a fault is held.
    pub fault_hold_max: Duration,
    /// Network mode.
    pub net: NetMode,
    /// The `ticketd` binary.
    pub bin: PathBuf,
    /// Where the history, report and summary go.
    pub out_dir: PathBuf,
    /// Keys in use at once (smaller: more contention), for the register workload.
    pub key_window: u64,
    /// What the clients do.
    #[serde(default = "register")]
    pub workload: Workload,
    /// The nodes' Raft heartbeat and election timeout.
    #[serde(default)]
    pub timing: RaftTiming,
    /// A shell command run once the cluster is healed and digested, while it still runs (at
    /// most [`AFTER_HEAL_MAX`]), with `TICKETCTL_ENDPOINTS`, `TICKETCTL_CACERT`,
    /// `TICKETCTL_CERT` and `TICKETCTL_KEY` (an admin identity) set: `ticketctl endpoint
    /// hashkv` against the very cluster the checker judges. Its exit status is in the summary.
    pub after_heal: Option<String>,
}

/// The longest an `after_heal` command may run before it is killed.
pub const AFTER_HEAL_MAX: Duration = Duration::from_secs(120);

/// The nodes' Raft timing in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RaftTiming {
    /// Heartbeat 100 ms, election timeout 600 ms: the chaos runs' default (a debug build on two
    /// cores under faults keeps its leader; failures, not slowness, make the elections).
    #[default]
    Chaos,
    /// What `ticketd node` runs with by default: heartbeat 50 ms, election timeout 100 ms.
    Production,
}

impl RaftTiming {
    /// (heartbeat ms, election timeout ms).
    pub fn millis(self) -> (u64, u64) {
        match self {
            RaftTiming::Chaos => (100, 600),
            RaftTiming::Production => (50, 100),
        }
    }

    /// `chaos` or `production`.
    pub fn name(self) -> &'static str {
        match self {
            RaftTiming::Chaos => "chaos",
            RaftTiming::Production => "production",
        }
    }

    /// Parses `chaos` or `production`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "chaos" => Ok(RaftTiming::Chaos),
            "production" => Ok(RaftTiming::Production),
            other => anyhow::bail!("unknown timing {other:?} (chaos, production)"),
        }
    }
}

fn register() -> Workload {
    Workload::Register
}

/// What one run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// Name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u64,
    /// `netns` or `loopback` (and why).
    pub network: String,
    /// Fault kinds asked for.
    pub faults_requested: Vec<String>,
    /// Ops answered.
    pub ok: usize,
    /// Ops that definitely failed.
    pub fail: usize,
    /// Ops with unknown outcome.
    pub info: usize,
    /// Injections by kind: [installed, skipped, indeterminate].
    pub faults: FaultCounts,
    /// Violations.
    pub anomalies: Vec<Anomaly>,
    /// Objects whose linearizability search ran out of budget.
    pub inconclusive: usize,
    /// Reserved seats checked one by one for linearizability.
    #[serde(default)]
    pub wgl_seats: usize,
    /// The history file.
    pub history: PathBuf,
    /// Node data and logs (kept when anomalies were found).
    pub cluster_dir: Option<PathBuf>,
    /// Wall time of the run, s.
    pub seconds: f64,
    /// The command that replays this run's schedule.
    pub replay: String,
    /// Call-offs, refunds and notifications the sale's answers show.
    #[serde(default)]
    pub money: MoneyCounts,
    /// The `after_heal` command's exit status (-1: killed or not started).
    #[serde(default)]
    pub after_heal_status: Option<i32>,
}

/// What the answers of a sale run show of its money and message paths (first applications only,
/// not replays).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyCounts {
    /// Purchases confirmed.
    pub purchases: usize,
    /// Orders canceled by their buyers.
    pub order_cancels: usize,
    /// Tickets refunded.
    pub refunds: usize,
    /// Dts called off.
    pub call_offs: usize,
    /// Orders canceled by those call-offs.
    pub orders_called_off: usize,
    /// Call-offs that canceled two orders or more (where the order of cancellation shows).
    pub call_offs_of_many: usize,
    /// Notifications marked sent.
    pub notes_sent: usize,
}

impl MoneyCounts {
    /// Counts the first applications among a history's answers.
    pub fn of(h: &History) -> Self {
        let mut c = Self::default();
        for o in &h.ops {
            let Some(Ret::Write {
                outcome: ticketd_store::Outcome::Done(d),
                replayed: false,
                ..
            }) = &o.ret
            else {
                continue;
            };
            use ticketd_store::command::Done;
            match d {
                Done::PurchaseConfirmed { .. } => c.purchases += 1,
                Done::OrderCanceled { .. } => c.order_cancels += 1,
                Done::TicketRefunded { .. } => c.refunds += 1,
                Done::DtCanceled {
                    orders_canceled, ..
                } => {
                    c.call_offs += 1;
                    c.orders_called_off += *orders_canceled as usize;
                    if *orders_canceled >= 2 {
                        c.call_offs_of_many += 1;
                    }
                }
                Done::NotificationSent { .. } => c.notes_sent += 1,
                _ => {}
            }
        }
        c
    }
}

fn cons_of(c: Cons) -> Consistency {
    match c {
        Cons::Linearizable => Consistency::Linearizable,
        Cons::Local => Consistency::Local,
    }
}

fn client_policy() -> RetryPolicy {
    RetryPolicy {
        attempts_max: 8,
        attempt_timeout: Duration::from_millis(1500),
        total_deadline: Duration::from_secs(5),
        backoff: Duration::from_millis(50),
    }
}

/// Executes `call` and records its invocation and completion: a write through `client`, or the
/// single-node client of the node it names (`via`); a read through `client`, at the node it
/// names (`endpoints` gives the address) or wherever `client` reads.
pub async fn perform(
    rec: &Recorder,
    client: &ClusterClient,
    process: u64,
    call: Call,
    endpoints: &[(u64, String)],
    singles: &BTreeMap<u64, ClusterClient>,
) -> Line {
    let op = rec.next_op();
    let f = call.f().to_string();
    rec.record(&Line::Invoke {
        time_ns: rec.now(),
        process,
        op,
        f: f.clone(),
        call: call.clone(),
    });
    let line = match &call {
        Call::Write {
            client_id,
            key,
            command,
            via,
        } => match via
            .and_then(|n| singles.get(&n))
            .unwrap_or(client)
            .write(client_id, key, command)
            .await
        {
            Ok(w) => Line::Ok {
                time_ns: rec.now(),
                process,
                op,
                f,
                ret: Ret::from_reply(&w.reply),
                index: write_pos(w.log_index, w.log_seq),
                call,
            },
            // Never proposed: no leader answered, or the request was refused as invalid or
            // unauthorized.
            Err(
                e @ (ClientError::Unreachable(_)
                | ClientError::Rejected(_)
                | ClientError::Denied(_)),
            ) => Line::Fail {
                time_ns: rec.now(),
                process,
                op,
                f,
                call,
                error: e.to_string(),
            },
            // May have been applied.
            Err(e @ (ClientError::Unknown(_) | ClientError::Server(_))) => Line::Info {
                time_ns: rec.now(),
                process,
                op,
                f,
                call,
                error: e.to_string(),
            },
        },
        Call::Read {
            query,
            consistency,
            node,
            ..
        } => {
            let res = match node {
                Some(n) => {
                    let addr = endpoints
                        .iter()
                        .find(|(id, _)| id == n)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                    match client.read_at(&addr, query, cons_of(*consistency)).await {
                        Ok(Some(r)) => Ok(r),
                        Ok(None) => Err(ClientError::Unreachable("no leader known".into())),
                        Err(e) => Err(e),
                    }
                }
                None => client.read(query, cons_of(*consistency)).await,
            };
            match res {
                Ok(r) => Line::Ok {
                    time_ns: rec.now(),
                    process,
                    op,
                    f,
                    ret: Ret::Read { result: r.result },
                    index: read_pos(r.applied_index),
                    call,
                },
                // A read changes nothing: an unanswered read is a failed one.
                Err(e) => Line::Fail {
                    time_ns: rec.now(),
                    process,
                    op,
                    f,
                    call,
                    error: e.to_string(),
                },
            }
        }
    };
    rec.record(&line);
    line
}

/// Runs `cmd` against the healed cluster (see [`RunConfig::after_heal`]); its exit status.
async fn after_heal(rec: &Recorder, env: &Env, cmd: &str) -> i32 {
    let files = env
        .cluster
        .tls_files(&ticketd_raft::identity::Identity::Admin("dev".into()));
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("TICKETCTL_ENDPOINTS", env.cluster.endpoints().join(","))
        .env("TICKETCTL_CACERT", &files.ca)
        .env("TICKETCTL_CERT", &files.cert)
        .env("TICKETCTL_KEY", &files.key)
        .kill_on_drop(true)
        .status();
    let status = match tokio::time::timeout(AFTER_HEAL_MAX, child).await {
        Ok(Ok(s)) => s.code().unwrap_or(-1),
        Ok(Err(e)) => {
            rec.note(format!("after-heal command {cmd:?} did not start: {e}"));
            -1
        }
        Err(_) => {
            rec.note(format!(
                "after-heal command {cmd:?} killed after {AFTER_HEAL_MAX:?}"
            ));
            -1
        }
    };
    rec.note(format!("after-heal command {cmd:?} exited {status}"));
    status
}

/// Records every running voter's digest of one digest entry (see the caller).
async fn final_digests(rec: &Recorder, env: &Env, leader: Option<u64>) {
    let record = |node: Option<u64>, got: Result<(u64, String), String>| {
        let op = rec.next_op();
        let call = Call::Read {
            query: Query::Digest,
            consistency: Cons::Local,
            node,
            final_read: true,
        };
        let f = call.f().to_string();
        rec.record(&Line::Invoke {
            time_ns: rec.now(),
            process: 1_000_001,
            op,
            f: f.clone(),
            call: call.clone(),
        });
        rec.record(&match got {
            Ok((index, digest)) => Line::Ok {
                time_ns: rec.now(),
                process: 1_000_001,
                op,
                f,
                ret: Ret::Read {
                    result: ticketd_store::QueryResult::Digest(digest),
                },
                index: read_pos(index),
                call,
            },
            Err(error) => Line::Fail {
                time_ns: rec.now(),
                process: 1_000_001,
                op,
                f,
                call,
                error,
            },
        });
    };
    let Some(l) = leader else {
        record(None, Err("no leader after healing: no digest entry".into()));
        return;
    };
    let voters: Vec<u64> = match env.cluster.status(l).await {
        Ok(s) => s.members.iter().map(|m| m.id).collect(),
        Err(e) => {
            record(None, Err(format!("leader status: {e:#}")));
            return;
        }
    };
    let running: Vec<u64> = env
        .cluster
        .running()
        .into_iter()
        .filter(|id| voters.contains(id))
        .collect();
    let endpoints: Vec<String> = running.iter().map(|id| env.cluster.addr(*id)).collect();
    let admin = env.cluster.admin_client_for(&endpoints);
    match admin.hashkv(Duration::from_secs(60)).await {
        Ok((index, answers)) => {
            for (id, (_, a)) in running.iter().zip(answers) {
                let got = match a {
                    Ok(s) if s.state == ticketd_raft::pb::DigestState::DigestComputed as i32 => {
                        Ok((index, s.digest))
                    }
                    Ok(s) => Err(format!("digest of entry {index}: state {}", s.state)),
                    Err(e) => Err(format!("digest of entry {index}: {e}")),
                };
                record(Some(*id), got);
            }
        }
        Err(e) => record(None, Err(format!("digest entry not proposed: {e}"))),
    }
}

/// How a completion line ended.
fn type_of(line: &Line) -> OpType {
    match line {
        Line::Ok { .. } => OpType::Ok,
        Line::Fail { .. } => OpType::Fail,
        _ => OpType::Info,
    }
}

/// One client: sequential ops at its share of the rate until `until`. A process whose op ended
/// unknown is retired (its op may still be in flight) and the client continues as a new process.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    idx: usize,
    clients: usize,
    seed: u64,
    rate: f64,
    key_window: u64,
    until: Instant,
    rec: Arc<Recorder>,
    endpoints: Vec<(u64, String)>,
    transport: Transport,
    counter: Arc<AtomicU64>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed.wrapping_add(1 + idx as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    let client = ClusterClient::new(
        endpoints.iter().map(|(_, a)| a.clone()).collect(),
        client_policy(),
        transport.clone(),
    );
    // One client per node, for writes that a follower must forward.
    let singles: BTreeMap<u64, ClusterClient> = endpoints
        .iter()
        .map(|(id, a)| {
            let single = ClusterClient::new(vec![a.clone()], client_policy(), transport.clone());
            (*id, single)
        })
        .collect();
    let client_id = format!("chaos-c{idx}");
    let mut process = idx as u64;
    let mut past: Vec<(String, Command)> = Vec::new();
    let period = Duration::from_secs_f64(clients as f64 / rate.max(0.1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < until {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let venue = format!("v{}", n / 16 + rng.random_range(0..key_window.max(1)));
        let roll: f64 = rng.random();
        let call = if roll < 0.45 {
            let key = format!("k{n}");
            let command = Command::CreateVenue {
                venue_id: venue,
                name: format!("n{idx}-{n}"),
                city: "Chaos".into(),
            };
            past.push((key.clone(), command.clone()));
            // A third of the writes go through one chosen node (forwarded when a follower).
            let via = rng
                .random_bool(0.33)
                .then(|| endpoints[rng.random_range(0..endpoints.len())].0);
            Call::Write {
                client_id: client_id.clone(),
                key,
                command,
                via,
            }
        } else if roll < 0.50 && !past.is_empty() {
            // Resubmission: the same key and command again.
            let (key, command) = past[rng.random_range(0..past.len())].clone();
            Call::Write {
                client_id: client_id.clone(),
                key,
                command,
                via: None,
            }
        } else if roll < 0.85 {
            // Linearizable reads through any node (the leader, mostly) or through a chosen
            // node (a follower's ReadIndex path).
            let node = rng
                .random_bool(0.4)
                .then(|| endpoints[rng.random_range(0..endpoints.len())].0);
            Call::Read {
                query: Query::GetVenue { venue_id: venue },
                consistency: Cons::Linearizable,
                node,
                final_read: false,
            }
        } else {
            let (id, _) = &endpoints[rng.random_range(0..endpoints.len())];
            Call::Read {
                query: Query::GetVenue { venue_id: venue },
                consistency: Cons::Local,
                node: Some(*id),
                final_read: false,
            }
        };
        let line = perform(&rec, &client, process, call, &endpoints, &singles).await;
        if type_of(&line) == OpType::Info {
            process += clients as u64;
        }
    }
}

/// One client of the sale workload (a buyer or a scanner), like [`client_loop`].
#[allow(clippy::too_many_arguments)]
async fn sale_loop(
    idx: usize,
    cfg: Arc<RunConfig>,
    dts: usize,
    start: Instant,
    until: Instant,
    rec: Arc<Recorder>,
    endpoints: Vec<(u64, String)>,
    transport: Transport,
    shared: Arc<Mutex<Shared>>,
) {
    let client = ClusterClient::new(
        endpoints.iter().map(|(_, a)| a.clone()).collect(),
        client_policy(),
        transport.clone(),
    );
    let singles: BTreeMap<u64, ClusterClient> = endpoints
        .iter()
        .map(|(id, a)| {
            let single = ClusterClient::new(vec![a.clone()], client_policy(), transport.clone());
            (*id, single)
        })
        .collect();
    let nodes: Vec<u64> = endpoints.iter().map(|(id, _)| *id).collect();
    let mut sc = SaleClient::new(idx, cfg.clients, cfg.seed, format!("chaos-c{idx}"));
    let mut process = idx as u64;
    let period = Duration::from_secs_f64(cfg.clients as f64 / cfg.rate.max(0.1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < until {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        // The dt on sale moves on through the run.
        let phase =
            (start.elapsed().as_secs_f64() / cfg.duration.as_secs_f64() * dts as f64) as usize;
        let call = {
            let t = shared.lock().expect("shared lock");
            sc.next(&dt_id(phase.min(dts - 1)), &t, &nodes)
        };
        let line = perform(&rec, &client, process, call.clone(), &endpoints, &singles).await;
        {
            let mut t = shared.lock().expect("shared lock");
            sc.observe(
                &call,
                Seen::of(&line),
                workload::effect_index(&line),
                &mut t,
            );
        }
        if type_of(&line) == OpType::Info {
            process += cfg.clients as u64;
        }
    }
}

/// Writes the sale's setup through `client`, each write retried with its key until answered.
async fn sale_setup_writes(
    rec: &Recorder,
    client: &ClusterClient,
    endpoints: &[(u64, String)],
    dts: usize,
    clients: usize,
) -> anyhow::Result<()> {
    for (key, command) in workload::sale_setup(dts, clients) {
        let call = Call::Write {
            client_id: workload::SETUP_CLIENT.into(),
            key,
            command,
            via: None,
        };
        let mut done = false;
        for _ in 0..5 {
            let line = perform(
                rec,
                client,
                999_999,
                call.clone(),
                endpoints,
                &BTreeMap::new(),
            )
            .await;
            if let Line::Ok {
                ret: Ret::Write { outcome, .. },
                ..
            } = &line
            {
                anyhow::ensure!(
                    matches!(outcome, ticketd_store::Outcome::Done(_)),
                    "setup write refused: {call:?}: {outcome:?}"
                );
                done = true;
                break;
            }
        }
        anyhow::ensure!(done, "setup write not answered: {call:?}");
    }
    Ok(())
}

/// The number of dts a sale run of `duration` puts on sale one after another.
pub fn dts_for(duration: Duration) -> usize {
    (duration.as_secs() / 10).clamp(2, 60) as usize
}

/// Starts the cluster in namespaces or on loopback, as the config asks.
async fn start_env(cfg: &RunConfig, rec: &Recorder) -> anyhow::Result<(Env, String)> {
    let lazy_fs = cfg.faults.contains(&FaultKind::LoseUnsynced)
        && match crate::lazyfs::probe() {
            Ok(()) => true,
            Err(e) => {
                let msg =
                    format!("NO LAZYFS ({e:#}): lose-unsynced faults are skipped in this run");
                eprintln!("{msg}");
                rec.note(msg);
                false
            }
        };
    let (heartbeat_ms, election_timeout_ms) = cfg.timing.millis();
    let opts = NodeOpts {
        heartbeat_ms,
        election_timeout_ms,
        snapshot_every_entries: 500,
        logs_kept_after_snapshot: 100,
        lazy_fs,
    };
    let net = match cfg.net {
        NetMode::Loopback => None,
        NetMode::Netns => Some(Netns::create(1..=cfg.nodes).context("network namespaces")?),
        NetMode::Auto => match Netns::create(1..=cfg.nodes) {
            Ok(n) => Some(n),
            Err(e) => {
                let msg = format!(
                    "NO NETWORK NAMESPACES ({e:#}): running on loopback WITHOUT partition or packet-loss faults"
                );
                eprintln!("{msg}");
                rec.note(msg);
                None
            }
        },
    };
    let network = match &net {
        Some(n) => format!("netns (bridge {}, 10.88.x.0/24)", n.bridge()),
        None => "loopback (no partitions)".into(),
    };
    let cluster = {
        let place = |id| placement(net.as_ref(), id);
        TestCluster::start_placed(&cfg.bin, cfg.nodes, opts, &place).await?
    };
    Ok((Env { cluster, net }, network))
}

/// Performs `calls` after healing, four at a time, each tried up to three times; returns how
/// many never got an answer.
async fn final_calls(
    rec: &Arc<Recorder>,
    client: &ClusterClient,
    endpoints: &[(u64, String)],
    process: u64,
    calls: Vec<Call>,
) -> usize {
    use futures::StreamExt as _;
    futures::stream::iter(calls)
        .map(|call| async move {
            for _ in 0..3 {
                let line = perform(
                    rec,
                    client,
                    process,
                    call.clone(),
                    endpoints,
                    &BTreeMap::new(),
                )
                .await;
                if type_of(&line) == OpType::Ok {
                    return 0;
                }
            }
            1
        })
        .buffer_unordered(4)
        .fold(0, |n, x| async move { n + x })
        .await
}

/// Runs one chaos run and checks it.
pub async fn run(cfg: &RunConfig) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.out_dir)?;
    let history_path = cfg.out_dir.join(format!("{}.history.jsonl", cfg.name));
    let rec = Arc::new(Recorder::create(&history_path)?);
    let mut config = serde_json::to_value(cfg)?;
    // The wall clock at the history's time 0: the checker bounds log time (the leaders'
    // clocks) with it.
    config["start_unix_ms"] = serde_json::json!(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
            - rec.now() as i64 / 1_000_000
    );
    rec.record(&Line::Meta {
        time_ns: 0,
        seed: cfg.seed,
        config,
    });
    eprintln!(
        "chaos run {}: seed {} nodes {} clients {} rate {}/s for {:?}, faults {:?}, raft timing {} (heartbeat {} ms, election timeout {} ms)",
        cfg.name,
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        cfg.rate,
        cfg.duration,
        cfg.faults,
        cfg.timing.name(),
        cfg.timing.millis().0,
        cfg.timing.millis().1
    );
    let (env, network) = start_env(cfg, &rec).await?;
    rec.note(format!("cluster up: {network}"));
    let endpoints: Vec<(u64, String)> = env
        .cluster
        .nodes()
        .map(|n| (n.id, n.addr.clone()))
        .collect();

    let final_client = ClusterClient::new(
        env.cluster.endpoints(),
        RetryPolicy {
            attempts_max: 20,
            attempt_timeout: Duration::from_secs(3),
            total_deadline: Duration::from_secs(30),
            ..Default::default()
        },
        env.cluster.api_transport(),
    );
    let dts = dts_for(cfg.duration);
    if cfg.workload == Workload::Sale {
        sale_setup_writes(&rec, &final_client, &endpoints, dts, cfg.clients)
            .await
            .context("sale setup")?;
        rec.note(format!("sale setup written: {dts} dts"));
    }

    let start = Instant::now();
    let until = start + cfg.duration;
    let counter = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let shared_cfg = Arc::new(cfg.clone());
    let mut clients = Vec::new();
    for i in 0..cfg.clients {
        clients.push(match cfg.workload {
            Workload::Register => tokio::spawn(client_loop(
                i,
                cfg.clients,
                cfg.seed,
                cfg.rate,
                cfg.key_window,
                until,
                rec.clone(),
                endpoints.clone(),
                env.cluster.api_transport(),
                counter.clone(),
            )),
            Workload::Sale => tokio::spawn(sale_loop(
                i,
                shared_cfg.clone(),
                dts,
                start,
                until,
                rec.clone(),
                endpoints.clone(),
                env.cluster.api_transport(),
                shared.clone(),
            )),
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let nemesis = Nemesis::new(cfg.seed, env, rec.clone());
    // Faults stop a little before the clients do, so the tail of the run sees a healed cluster.
    let fault_until = until - cfg.duration.mul_f64(0.1).min(Duration::from_secs(5));
    let nem = tokio::spawn(nemesis.run(
        cfg.faults.clone(),
        fault_until,
        cfg.fault_interval,
        cfg.fault_hold_max,
        stop_rx,
    ));
    for c in clients {
        // A client's op is bounded by the client's total deadline: this join is bounded too.
        let _ = c.await;
    }
    let _ = stop_tx.send(true);
    let (mut env, counts) = nem.await.context("nemesis task")?;
    rec.note("workload done; settling unknown writes, final reads");

    // Through a healed cluster: a leader, every write of unknown fate resubmitted with its key
    // (the answer says whether and where it took effect), every object read back, every
    // replica's digest.
    let leader = env.cluster.wait_leader(Duration::from_secs(60)).await;
    if let Err(e) = &leader {
        rec.note(format!("no leader after healing: {e:#}"));
    }
    let fin_endpoints: Vec<(u64, String)> = env
        .cluster
        .nodes()
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    let final_client = ClusterClient::new(
        env.cluster.endpoints(),
        RetryPolicy {
            attempts_max: 20,
            attempt_timeout: Duration::from_secs(3),
            total_deadline: Duration::from_secs(30),
            ..Default::default()
        },
        env.cluster.api_transport(),
    );
    let lines = {
        rec.flush()?;
        History::load_lines(&history_path)?
    };
    let settle = workload::unsettled_writes(&lines);
    let unsettled = final_calls(&rec, &final_client, &fin_endpoints, 1_000_000, settle).await;
    if unsettled > 0 {
        rec.note(format!("{unsettled} writes could not be settled"));
    }
    let lines = {
        rec.flush()?;
        History::load_lines(&history_path)?
    };
    let reads: Vec<Call> = workload::final_queries(&lines)
        .into_iter()
        .map(|query| Call::Read {
            query,
            consistency: Cons::Linearizable,
            node: None,
            final_read: true,
        })
        .collect();
    let unread = final_calls(&rec, &final_client, &fin_endpoints, 1_000_002, reads).await;
    if unread > 0 {
        rec.note(format!("{unread} objects could not be read back"));
    }
    // Replicas equal: a digest entry proposed through the leader (`ticketctl endpoint
    // hashkv`'s way), so every running voter digests its state as of one index; each answer is
    // a final read of the digest at that index, a missing one a failed read (the checker
    // flags both a difference and a gap).
    final_digests(&rec, &env, leader.as_ref().ok().copied()).await;
    let after_heal_status = match &cfg.after_heal {
        Some(cmd) => Some(after_heal(&rec, &env, cmd).await),
        None => None,
    };
    rec.note("done");
    rec.flush()?;

    let h = History::load(&history_path)?;
    let report = checker::check(&h);
    let report_path = cfg.out_dir.join(format!("{}.report.json", cfg.name));
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)?;
    let cluster_dir = if report.anomalies.is_empty() {
        None
    } else {
        Some(env.cluster.keep_files())
    };
    drop(env);
    let summary = RunSummary {
        name: cfg.name.clone(),
        seed: cfg.seed,
        nodes: cfg.nodes,
        network,
        faults_requested: cfg.faults.iter().map(|f| f.name()).collect(),
        ok: report.ok,
        fail: report.fail,
        info: report.info,
        faults: counts,
        anomalies: report.anomalies.clone(),
        inconclusive: report.inconclusive.len(),
        wgl_seats: report.wgl_seats,
        history: history_path.clone(),
        cluster_dir,
        seconds: started.elapsed().as_secs_f64(),
        money: MoneyCounts::of(&h),
        after_heal_status,
        replay: format!(
            "ticketd-chaos run --name {}-replay --workload {} --timing {} --seed {} --nodes {} --clients {} --rate {} --duration {} --faults {} --fault-interval {} --fault-hold {}",
            cfg.name,
            cfg.workload.name(),
            cfg.timing.name(),
            cfg.seed,
            cfg.nodes,
            cfg.clients,
            cfg.rate,
            cfg.duration.as_secs(),
            if cfg.faults.is_empty() { "none".to_string() } else { cfg.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(",") },
            cfg.fault_interval.as_secs_f64(),
            cfg.fault_hold_max.as_secs_f64(),
        ),
    };
    std::fs::write(
        cfg.out_dir.join(format!("{}.summary.json", cfg.name)),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(summary)
}

/// The summary table of several runs, in the shape the anchors report.
pub fn table(runs: &[RunSummary]) -> String {
    let mut out = String::new();
    out.push_str("| run | seed | nodes | network | ops ok | fail | unknown | faults installed/skipped/indeterminate | seats checked | purchases / cancels / refunds / call-offs (orders) / sent | anomalies |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let (mut ok, mut fail, mut info, mut an, mut seats) = (0, 0, 0, 0, 0);
    let mut all = FaultCounts::new();
    let mut money = MoneyCounts::default();
    for r in runs {
        let faults: Vec<String> = r
            .faults
            .iter()
            .map(|(k, c)| format!("{k} {}/{}/{}", c[0], c[1], c[2]))
            .collect();
        for (k, c) in &r.faults {
            let e = all.entry(k.clone()).or_insert([0; 3]);
            for i in 0..3 {
                e[i] += c[i];
            }
        }
        let m = &r.money;
        money.purchases += m.purchases;
        money.order_cancels += m.order_cancels;
        money.refunds += m.refunds;
        money.call_offs += m.call_offs;
        money.orders_called_off += m.orders_called_off;
        money.notes_sent += m.notes_sent;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.seed,
            r.nodes,
            r.network.split(' ').next().unwrap_or_default(),
            r.ok,
            r.fail,
            r.info,
            if faults.is_empty() {
                "-".into()
            } else {
                faults.join(", ")
            },
            r.wgl_seats,
            money_cell(m),
            r.anomalies.len()
        ));
        ok += r.ok;
        fail += r.fail;
        info += r.info;
        an += r.anomalies.len();
        seats += r.wgl_seats;
    }
    out.push_str(&format!(
        "| **total: {} runs** | | | | {ok} | {fail} | {info} | {} | {seats} | {} | {an} |\n",
        runs.len(),
        all.iter()
            .map(|(k, c)| format!("{k} {}/{}/{}", c[0], c[1], c[2]))
            .collect::<Vec<_>>()
            .join(", "),
        money_cell(&money)
    ));
    for r in runs {
        for a in r.anomalies.iter().take(10) {
            out.push_str(&format!(
                "\nANOMALY {} (seed {}): [{}] {}: {}",
                r.name, r.seed, a.checker, a.kind, a.detail
            ));
        }
    }
    out
}

fn money_cell(m: &MoneyCounts) -> String {
    format!(
        "{} / {} / {} / {} ({}) / {}",
        m.purchases, m.order_cancels, m.refunds, m.call_offs, m.orders_called_off, m.notes_sent
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_suite_covers_every_fault_kind() {
        for kind in FaultKind::ALL {
            assert!(
                SHORT_SUITE.iter().any(|r| r.faults.contains(kind)),
                "{} is in no run of the short suite",
                kind.name()
            );
        }
        let names: std::collections::BTreeSet<&str> = SHORT_SUITE.iter().map(|r| r.name).collect();
        assert_eq!(
            names.len(),
            SHORT_SUITE.len(),
            "run names are file prefixes"
        );
    }
}
