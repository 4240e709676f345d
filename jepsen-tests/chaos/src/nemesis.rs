//! Faults on a schedule drawn from a seed: crashes, pauses, membership changes, leader
//! transfers, partitions, packet loss, latency, clock skew and power loss (un-fsynced writes
//! lost). One fault at a time: install, hold, heal.
//! Every injection is recorded as `installed`, `skipped` (e.g. no leader to kill, no namespaces
//! for a partition) or `indeterminate` (a step failed halfway). Kinds come in shuffled rounds,
//! so a run long enough for k faults covers min(k, kinds) distinct kinds.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use ticketd_raft::client::{AdminOp, ClusterClient, RetryPolicy};

use crate::cluster::{Launch, Placement, TestCluster};
use crate::net::Netns;
use ticketd_checker::history::{FaultStatus, Line, Recorder};

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// kill -9 of a random node, then restart.
    KillOne,
    /// kill -9 of the leader, then restart.
    KillLeader,
    /// kill -9 of a majority, one after another, then restart them one after another.
    KillMajority,
    /// SIGSTOP of a random node, then SIGCONT.
    PauseOne,
    /// SIGSTOP of the leader, then SIGCONT.
    PauseLeader,
    /// Remove a follower voter (and stop it), add a fresh node as learner, promote it.
    Membership,
    /// Hand leadership to another voter.
    TransferLeader,
    /// One node cut off from the others.
    IsolateOne,
    /// The leader cut off from the others.
    IsolateLeader,
    /// A random minority and majority cut apart.
    MajoritySplit,
    /// Each node hears only its two ring neighbours (overlapping majorities; 5+ nodes).
    Ring,
    /// One node's packets are dropped by every other node; it still hears them.
    OneWay,
    /// Every node drops 10-40% of the packets from its peers.
    PacketLoss,
    /// A minority restarts with its wall clock shifted (libfaketime); half the time one of them
    /// is then made leader, so its clock stamps the log.
    ClockSkew,
    /// Every node holds its peers' packets 5-150 ms (plus jitter up to half that) before
    /// delivering them, or only one node's links are slow, both ways (NFQUEUE; no netem here).
    Latency,
    /// Power loss: kill -9 of one node, a majority or every node, each of which then loses the
    /// data it wrote and never fsynced (its data directory is a lazyfs mount); then restart.
    LoseUnsynced,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::KillOne,
        FaultKind::KillLeader,
        FaultKind::KillMajority,
        FaultKind::PauseOne,
        FaultKind::PauseLeader,
        FaultKind::Membership,
        FaultKind::TransferLeader,
        FaultKind::IsolateOne,
        FaultKind::IsolateLeader,
        FaultKind::MajoritySplit,
        FaultKind::Ring,
        FaultKind::OneWay,
        FaultKind::PacketLoss,
        FaultKind::Latency,
        FaultKind::ClockSkew,
        FaultKind::LoseUnsynced,
    ];

    /// The kebab-case name.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Parses a kebab-case name.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| anyhow::anyhow!("unknown fault kind {s:?}"))
    }

    /// Needs network namespaces.
    pub fn needs_netns(self) -> bool {
        matches!(
            self,
            FaultKind::IsolateOne
                | FaultKind::IsolateLeader
                | FaultKind::MajoritySplit
                | FaultKind::Ring
                | FaultKind::OneWay
                | FaultKind::PacketLoss
                | FaultKind::Latency
        )
    }
}

/// The cluster and its network; the cluster is dropped (processes killed) before the
/// namespaces are removed.
pub struct Env {
    /// The nodes.
    pub cluster: TestCluster,
    /// The namespaces, when the run has them.
    pub net: Option<Netns>,
}

/// Where node `id` listens and how it is launched.
pub fn placement(net: Option<&Netns>, id: u64) -> anyhow::Result<Placement> {
    Ok(match net {
        Some(n) => Placement {
            addr: format!("{}:7000", n.ip(id)),
            metrics_addr: format!("{}:9000", n.ip(id)),
            launch: Launch {
                prefix: n.prefix(id),
                env: Vec::new(),
            },
        },
        None => {
            let port = crate::cluster::free_port;
            Placement {
                addr: format!("127.0.0.1:{}", port()?),
                metrics_addr: format!("127.0.0.1:{}", port()?),
                launch: Launch::default(),
            }
        }
    })
}

/// The libfaketime library, if installed.
pub fn libfaketime() -> Option<String> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(|p| p.to_string())
}

enum Heal {
    Nothing,
    Restart(Vec<u64>),
    Cont(Vec<u64>),
    Net,
    Unskew(Vec<u64>),
}

/// Counts of injections by kind and status.
pub type FaultCounts = std::collections::BTreeMap<String, [u64; 3]>;

/// The fault injector of one run.
pub struct Nemesis {
    rng: ChaCha8Rng,
    env: Env,
    members: BTreeSet<u64>,
    /// The nodes the run's clients (and this nemesis's admin client) were given: they know no
    /// other addresses, so a membership fault never removes the last of them.
    known_to_clients: BTreeSet<u64>,
    next_id: u64,
    rec: Arc<Recorder>,
    admin: ClusterClient,
    /// Injections by kind: [installed, skipped, indeterminate].
    pub counts: FaultCounts,
}

impl Nemesis {
    /// A nemesis over `env`, drawing every choice from `seed`.
    pub fn new(seed: u64, env: Env, rec: Arc<Recorder>) -> Self {
        let members: BTreeSet<u64> = env.cluster.nodes().map(|n| n.id).collect();
        let next_id = members.iter().max().copied().unwrap_or(0) + 1;
        let admin = ClusterClient::new(
            env.cluster.endpoints(),
            RetryPolicy {
                attempts_max: 6,
                attempt_timeout: Duration::from_secs(3),
                total_deadline: Duration::from_secs(15),
                ..Default::default()
            },
            env.cluster.admin_transport(),
        );
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321),
            env,
            known_to_clients: members.clone(),
            members,
            next_id,
            rec,
            admin,
            counts: FaultCounts::new(),
        }
    }

    fn record(
        &mut self,
        kind: FaultKind,
        phase: &str,
        nodes: &[u64],
        status: FaultStatus,
        detail: String,
    ) {
        if phase == "start" {
            let c = self.counts.entry(kind.name()).or_insert([0; 3]);
            c[match status {
                FaultStatus::Installed => 0,
                FaultStatus::Skipped => 1,
                FaultStatus::Indeterminate => 2,
            }] += 1;
        }
        if !detail.is_empty() {
            tracing::info!(fault = %kind.name(), phase, ?nodes, ?status, %detail, "fault");
        }
        self.rec.record(&Line::Fault {
            time_ns: self.rec.now(),
            fault: kind.name(),
            phase: phase.into(),
            nodes: nodes.to_vec(),
            status,
            detail,
        });
    }

    /// Runs faults from `kinds` until `until`: a quiet period around `interval`, then one fault
    /// held for up to `hold_max`, then its heal. Returns the environment, healed.
    pub async fn run(
        mut self,
        kinds: Vec<FaultKind>,
        until: Instant,
        interval: Duration,
        hold_max: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> (Env, FaultCounts) {
        let sleep_until = |t: Instant, stop: &tokio::sync::watch::Receiver<bool>| {
            let mut stop = stop.clone();
            async move {
                tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        };
        let mut bag: Vec<FaultKind> = Vec::new();
        while !kinds.is_empty() && Instant::now() < until && !*stop.borrow() {
            let quiet = interval.mul_f64(self.rng.random_range(0.5..1.5));
            sleep_until((Instant::now() + quiet).min(until), &stop).await;
            if Instant::now() >= until || *stop.borrow() {
                break;
            }
            // Kinds come in shuffled rounds: every kind once per round, the order from the seed.
            if bag.is_empty() {
                bag = kinds.clone();
                bag.shuffle(&mut self.rng);
            }
            let kind = bag.pop().expect("refilled");
            let hold = Duration::from_millis(
                self.rng
                    .random_range(1_000..=hold_max.as_millis().max(1_001) as u64),
            );
            let heal = self.inject(kind).await;
            sleep_until((Instant::now() + hold).min(until), &stop).await;
            self.heal(kind, heal).await;
        }
        self.heal_all().await;
        (self.env, self.counts)
    }

    fn running_members(&self) -> Vec<u64> {
        let running = self.env.cluster.running();
        self.members
            .iter()
            .copied()
            .filter(|m| running.contains(m))
            .collect()
    }

    async fn leader(&self) -> Option<u64> {
        let l = self.env.cluster.any_leader().await?;
        self.members.contains(&l).then_some(l)
    }

    fn pick(&mut self, from: &[u64]) -> Option<u64> {
        from.choose(&mut self.rng).copied()
    }

    async fn inject(&mut self, kind: FaultKind) -> Heal {
        use FaultKind::*;
        if kind.needs_netns() && self.env.net.is_none() {
            self.record(
                kind,
                "start",
                &[],
                FaultStatus::Skipped,
                "no network namespaces: loopback run".into(),
            );
            return Heal::Nothing;
        }
        match kind {
            KillOne | KillLeader | PauseOne | PauseLeader => {
                let victim = if matches!(kind, KillLeader | PauseLeader) {
                    self.leader().await
                } else {
                    let r = self.running_members();
                    self.pick(&r)
                };
                let Some(v) = victim else {
                    self.record(
                        kind,
                        "start",
                        &[],
                        FaultStatus::Skipped,
                        "no victim (no leader known)".into(),
                    );
                    return Heal::Nothing;
                };
                let res = if matches!(kind, KillOne | KillLeader) {
                    self.env.cluster.kill(v)
                } else {
                    self.env.cluster.signal(v, "STOP")
                };
                match res {
                    Ok(()) => {
                        self.record(kind, "start", &[v], FaultStatus::Installed, String::new());
                        if matches!(kind, KillOne | KillLeader) {
                            Heal::Restart(vec![v])
                        } else {
                            Heal::Cont(vec![v])
                        }
                    }
                    Err(e) => {
                        self.record(
                            kind,
                            "start",
                            &[v],
                            FaultStatus::Indeterminate,
                            format!("{e:#}"),
                        );
                        Heal::Nothing
                    }
                }
            }
            KillMajority => {
                let mut r = self.running_members();
                r.shuffle(&mut self.rng);
                let k = self.members.len() / 2 + 1;
                let victims: Vec<u64> = r.into_iter().take(k).collect();
                let mut killed = Vec::new();
                let mut err = String::new();
                for v in &victims {
                    match self.env.cluster.kill(*v) {
                        Ok(()) => killed.push(*v),
                        Err(e) => err = format!("{e:#}"),
                    }
                    let gap = Duration::from_millis(self.rng.random_range(0..800));
                    tokio::time::sleep(gap).await;
                }
                let st = if err.is_empty() {
                    FaultStatus::Installed
                } else {
                    FaultStatus::Indeterminate
                };
                self.record(kind, "start", &killed, st, err);
                Heal::Restart(killed)
            }
            LoseUnsynced => self.lose_unsynced().await,
            TransferLeader => {
                let Some(l) = self.leader().await else {
                    self.record(kind, "start", &[], FaultStatus::Skipped, "no leader".into());
                    return Heal::Nothing;
                };
                let others: Vec<u64> = self
                    .running_members()
                    .into_iter()
                    .filter(|m| *m != l)
                    .collect();
                let Some(to) = self.pick(&others) else {
                    self.record(
                        kind,
                        "start",
                        &[],
                        FaultStatus::Skipped,
                        "no other voter".into(),
                    );
                    return Heal::Nothing;
                };
                match self
                    .admin
                    .admin_on_leader(AdminOp::TransferLeader(to))
                    .await
                {
                    Ok(_) => self.record(
                        kind,
                        "start",
                        &[l, to],
                        FaultStatus::Installed,
                        String::new(),
                    ),
                    Err(e) => self.record(
                        kind,
                        "start",
                        &[l, to],
                        FaultStatus::Indeterminate,
                        e.to_string(),
                    ),
                }
                Heal::Nothing
            }
            Membership => self.membership().await,
            IsolateOne | IsolateLeader | OneWay => {
                let victim = if kind == IsolateLeader {
                    self.leader().await
                } else {
                    let m: Vec<u64> = self.members.iter().copied().collect();
                    self.pick(&m)
                };
                let Some(v) = victim else {
                    self.record(kind, "start", &[], FaultStatus::Skipped, "no leader".into());
                    return Heal::Nothing;
                };
                let rest: Vec<u64> = self.all_nodes().into_iter().filter(|m| *m != v).collect();
                let net = self.env.net.as_ref().expect("checked");
                let res = if kind == OneWay {
                    rest.iter().try_for_each(|o| net.drop_from(*o, &[v]))
                } else {
                    net.partition(&[vec![v], rest])
                };
                self.net_result(kind, vec![v], res)
            }
            MajoritySplit | Ring => {
                let mut m = self.all_nodes();
                m.shuffle(&mut self.rng);
                let net = self.env.net.as_ref().expect("checked");
                let res = if kind == MajoritySplit {
                    let minority = m.len().saturating_sub(1) / 2;
                    let (a, b) = m.split_at(minority.max(1));
                    net.partition(&[a.to_vec(), b.to_vec()])
                } else {
                    let n = m.len();
                    (0..n).try_for_each(|i| {
                        let hear = [m[(i + 1) % n], m[(i + n - 1) % n]];
                        let deaf: Vec<u64> = m
                            .iter()
                            .copied()
                            .filter(|x| *x != m[i] && !hear.contains(x))
                            .collect();
                        net.drop_from(m[i], &deaf)
                    })
                };
                self.net_result(kind, m, res)
            }
            PacketLoss => {
                let p = self.rng.random_range(0.1..0.4);
                let m = self.all_nodes();
                let net = self.env.net.as_ref().expect("checked");
                let res = m.iter().try_for_each(|id| net.lossy_from(*id, &m, p));
                let h = self.net_result(kind, m, res);
                tracing::info!("packet loss p={p:.2}");
                h
            }
            Latency => {
                let base = Duration::from_millis(self.rng.random_range(5..=150));
                let jitter = base.mul_f64(self.rng.random_range(0.0..0.5));
                let seed = self.rng.random();
                let m = self.all_nodes();
                let one = if self.rng.random_bool(0.5) {
                    self.pick(&m)
                } else {
                    None
                };
                let net = self.env.net.as_ref().expect("checked");
                let res = match one {
                    // One slow node: it delays everything from its peers, they delay it.
                    Some(v) => net.delay_from(v, &m, base, jitter, seed).and_then(|()| {
                        m.iter()
                            .filter(|p| **p != v)
                            .try_for_each(|p| net.delay_from(*p, &[v], base, jitter, seed))
                    }),
                    None => m
                        .iter()
                        .try_for_each(|id| net.delay_from(*id, &m, base, jitter, seed)),
                };
                let nodes = one.map_or(m, |v| vec![v]);
                let detail = format!(
                    "{} ms + up to {} ms jitter per packet, {}",
                    base.as_millis(),
                    jitter.as_millis(),
                    one.map_or("every link".to_string(), |v| format!("node {v}'s links"))
                );
                match res {
                    Ok(()) => self.record(kind, "start", &nodes, FaultStatus::Installed, detail),
                    Err(e) => self.record(
                        kind,
                        "start",
                        &nodes,
                        FaultStatus::Indeterminate,
                        format!("{detail}: {e:#}"),
                    ),
                }
                Heal::Net
            }
            ClockSkew => {
                let Some(lib) = libfaketime() else {
                    self.record(
                        kind,
                        "start",
                        &[],
                        FaultStatus::Skipped,
                        "libfaketime not installed (apt-get install faketime)".into(),
                    );
                    return Heal::Nothing;
                };
                let mut r = self.running_members();
                r.shuffle(&mut self.rng);
                let minority = ((self.members.len() - 1) / 2).max(1);
                let victims: Vec<u64> = r
                    .into_iter()
                    .take(self.rng.random_range(1..=minority))
                    .collect();
                let mut done = Vec::new();
                let mut detail = Vec::new();
                for v in &victims {
                    let secs: i64 = self.rng.random_range(30..=900)
                        * if self.rng.random_bool(0.5) { 1 } else { -1 };
                    let mut launch = self.env.cluster.launch_of(*v);
                    launch
                        .env
                        .retain(|(k, _)| !k.starts_with("FAKETIME") && k != "LD_PRELOAD");
                    launch.env.push(("LD_PRELOAD".into(), lib.clone()));
                    launch.env.push(("FAKETIME".into(), format!("{secs:+}")));
                    launch
                        .env
                        .push(("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()));
                    let res = self
                        .env
                        .cluster
                        .stop(*v, Duration::from_secs(10))
                        .await
                        .map(|_| ());
                    self.env.cluster.set_launch(*v, launch);
                    match res.and_then(|_| self.env.cluster.respawn(*v)) {
                        Ok(()) => {
                            done.push(*v);
                            detail.push(format!("node {v} {secs:+}s"));
                        }
                        Err(e) => detail.push(format!("node {v}: {e:#}")),
                    }
                }
                // Half the time a skewed node is made leader: its clock then stamps the log
                // (log time jumps ahead, and holds can lapse early).
                if !done.is_empty() && self.rng.random_bool(0.5) {
                    let to = done[self.rng.random_range(0..done.len())];
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match self
                        .admin
                        .admin_on_leader(AdminOp::TransferLeader(to))
                        .await
                    {
                        Ok(_) => detail.push(format!("leadership to {to}")),
                        Err(e) => detail.push(format!("leadership to {to} failed: {e}")),
                    }
                }
                let st = if done.len() == victims.len() {
                    FaultStatus::Installed
                } else {
                    FaultStatus::Indeterminate
                };
                self.record(kind, "start", &victims, st, detail.join(", "));
                Heal::Unskew(victims)
            }
        }
    }

    /// Every node with a namespace that is a member (partitions apply to members only).
    fn all_nodes(&self) -> Vec<u64> {
        self.members.iter().copied().collect()
    }

    fn net_result(&mut self, kind: FaultKind, nodes: Vec<u64>, res: anyhow::Result<()>) -> Heal {
        match res {
            Ok(()) => self.record(kind, "start", &nodes, FaultStatus::Installed, String::new()),
            Err(e) => self.record(
                kind,
                "start",
                &nodes,
                FaultStatus::Indeterminate,
                format!("{e:#}"),
            ),
        }
        Heal::Net
    }

    /// [`FaultKind::LoseUnsynced`]: the victims are killed back to back (one power loss), then
    /// each drops its un-fsynced data; they restart at the heal.
    async fn lose_unsynced(&mut self) -> Heal {
        let kind = FaultKind::LoseUnsynced;
        if !self.env.cluster.has_lazy_fs() {
            self.record(
                kind,
                "start",
                &[],
                FaultStatus::Skipped,
                "no lazyfs mounts (needs root and /dev/fuse)".into(),
            );
            return Heal::Nothing;
        }
        let mut r = self.running_members();
        r.shuffle(&mut self.rng);
        let k = match self.rng.random_range(0..3) {
            0 => 1,
            1 => self.members.len() / 2 + 1,
            _ => r.len(),
        }
        .min(r.len());
        let mut killed = Vec::new();
        let mut err = String::new();
        for v in r.into_iter().take(k) {
            match self.env.cluster.kill(v) {
                Ok(()) => killed.push(v),
                Err(e) => err = format!("kill {v}: {e:#}"),
            }
        }
        let mut lost = Vec::new();
        for v in &killed {
            match self.env.cluster.lose_unsynced(*v) {
                Ok(l) => lost.push(format!("node {v} lost {l}")),
                Err(e) => err = format!("lose node {v}: {e:#}"),
            }
        }
        let (st, detail) = if err.is_empty() {
            (FaultStatus::Installed, lost.join("; "))
        } else {
            (FaultStatus::Indeterminate, err)
        };
        self.record(kind, "start", &killed, st, detail);
        Heal::Restart(killed)
    }

    async fn membership(&mut self) -> Heal {
        let kind = FaultKind::Membership;
        let Some(l) = self.leader().await else {
            self.record(kind, "start", &[], FaultStatus::Skipped, "no leader".into());
            return Heal::Nothing;
        };
        let mut steps = Vec::new();
        let mut ok = true;
        let target = self.env.cluster.nodes().count().min(5) as u64;
        let _ = target;
        // Remove a follower voter, then stop its process; never the last member the clients
        // know the address of (they would have no node left to reach, and the run no way to
        // settle its writes).
        let known: Vec<u64> = self
            .members
            .iter()
            .copied()
            .filter(|m| self.known_to_clients.contains(m))
            .collect();
        let followers: Vec<u64> = self
            .members
            .iter()
            .copied()
            .filter(|m| *m != l && known != [*m])
            .collect();
        let mut touched = Vec::new();
        if let Some(v) = self.pick(&followers) {
            match self.admin.admin_on_leader(AdminOp::Remove(v)).await {
                Ok(_) => {
                    steps.push(format!("removed {v}"));
                    self.members.remove(&v);
                    touched.push(v);
                    if self.env.cluster.running().contains(&v) {
                        let _ = self.env.cluster.stop(v, Duration::from_secs(10)).await;
                    }
                }
                Err(e) => {
                    ok = false;
                    steps.push(format!("remove {v}: {e}"));
                }
            }
        }
        // Add a fresh node as learner, wait for it to catch up (bounded), promote it.
        let id = self.next_id;
        self.next_id += 1;
        let added = async {
            if let Some(net) = self.env.net.as_mut() {
                net.add_node(id)?;
            }
            let place = placement(self.env.net.as_ref(), id)?;
            let addr = place.addr.clone();
            self.env.cluster.add_node_placed(id, place)?;
            self.admin
                .admin_on_leader(AdminOp::AddLearner { id, addr })
                .await?;
            anyhow::Ok(())
        }
        .await;
        match added {
            Ok(()) => {
                steps.push(format!("learner {id}"));
                touched.push(id);
                match self.admin.admin_on_leader(AdminOp::Promote(id)).await {
                    Ok(_) => {
                        self.members.insert(id);
                        steps.push(format!("promoted {id}"));
                    }
                    Err(e) => {
                        ok = false;
                        steps.push(format!("promote {id}: {e}"));
                    }
                }
            }
            Err(e) => {
                ok = false;
                steps.push(format!("add {id}: {e:#}"));
            }
        }
        self.resync_members().await;
        let st = if ok {
            FaultStatus::Installed
        } else {
            FaultStatus::Indeterminate
        };
        self.record(kind, "start", &touched, st, steps.join("; "));
        Heal::Nothing
    }

    /// Takes the voter set from the leader's status, when one answers.
    async fn resync_members(&mut self) {
        let Some(l) = self.env.cluster.any_leader().await else {
            return;
        };
        if let Ok(s) = self.env.cluster.status(l).await {
            let voters: BTreeSet<u64> =
                s.members.iter().filter(|m| m.voter).map(|m| m.id).collect();
            if !voters.is_empty() {
                self.members = voters;
            }
        }
    }

    async fn heal(&mut self, kind: FaultKind, heal: Heal) {
        let (nodes, res): (Vec<u64>, anyhow::Result<()>) = match heal {
            Heal::Nothing => return,
            Heal::Restart(v) => {
                let mut res = Ok(());
                for id in &v {
                    if let Err(e) = self.env.cluster.respawn(*id) {
                        res = Err(e);
                    }
                    let gap = Duration::from_millis(self.rng.random_range(0..800));
                    tokio::time::sleep(gap).await;
                }
                (v, res)
            }
            Heal::Cont(v) => {
                let res = v
                    .iter()
                    .try_for_each(|id| self.env.cluster.signal(*id, "CONT"));
                (v, res)
            }
            Heal::Net => (
                Vec::new(),
                self.env.net.as_ref().map(|n| n.heal()).unwrap_or(Ok(())),
            ),
            Heal::Unskew(v) => {
                let mut res = Ok(());
                for id in &v {
                    let mut launch = self.env.cluster.launch_of(*id);
                    launch
                        .env
                        .retain(|(k, _)| !k.starts_with("FAKETIME") && k != "LD_PRELOAD");
                    self.env.cluster.set_launch(*id, launch);
                    if self.env.cluster.running().contains(id) {
                        if let Err(e) = self.env.cluster.stop(*id, Duration::from_secs(10)).await {
                            res = Err(e);
                        }
                    }
                    if let Err(e) = self.env.cluster.respawn(*id) {
                        res = Err(e);
                    }
                }
                (v, res)
            }
        };
        match res {
            Ok(()) => self.record(kind, "stop", &nodes, FaultStatus::Installed, String::new()),
            Err(e) => self.record(
                kind,
                "stop",
                &nodes,
                FaultStatus::Indeterminate,
                format!("{e:#}"),
            ),
        }
    }

    /// Undoes everything: network rules, paused and dead members, skewed clocks.
    pub async fn heal_all(&mut self) {
        if let Some(n) = self.env.net.as_ref() {
            if let Err(e) = n.heal() {
                self.rec.note(format!("final heal: network: {e:#}"));
            }
        }
        for id in self.members.clone() {
            let skewed = self
                .env
                .cluster
                .launch_of(id)
                .env
                .iter()
                .any(|(k, _)| k == "FAKETIME");
            if skewed {
                self.heal(FaultKind::ClockSkew, Heal::Unskew(vec![id]))
                    .await;
            }
            if self.env.cluster.running().contains(&id) {
                let _ = self.env.cluster.signal(id, "CONT");
            } else if let Err(e) = self.env.cluster.respawn(id) {
                self.rec
                    .note(format!("final heal: restart node {id}: {e:#}"));
            }
        }
        self.rec.note("healed");
    }
}
