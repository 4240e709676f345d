//! Deterministic simulation of the Raft layer: openraft with ticketd's payload and reply types
//! and the real `store::Machine`, on in-memory storage and an in-memory network, all on one
//! paused-clock tokio thread with openraft's seeded RNG. Every choice (client ops, message delay
//! and loss, partitions, crashes, restarts, fsync timing) comes from the seed, so a failing seed
//! replays exactly: the same seed gives the same history, byte for byte.
//!
//! Modelled faults: crashes that lose every log write not yet fsynced (the log store completes
//! openraft's IO callback only when a simulated flush makes the writes durable, as the RocksDB
//! store does after its WAL fsync) and the state machine's un-snapshotted state (a restarted node
//! re-applies from its last snapshot); partitions (one node, minority/majority splits);
//! message loss (before delivery and of the reply after processing); message delay.
//!
//! Checked while it runs ([`Oracle`]): one log id names one entry on every node (log matching:
//! a leader never reuses an index of its leadership); no two nodes apply different entries at one
//! index (state machine safety). At the end: the history of client ops goes through the same
//! checkers as the real-process runs, replicas' digests included.
//!
//! Not modelled: the RocksDB log store, the snapshot file format and the gRPC network of
//! `raft/` (the simulation replaces them), disk corruption, clock skew.

pub mod simrt;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf};
use openraft::async_runtime::WatchReceiver;
use openraft::entry::RaftEntry;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::rt::AsyncRuntime;
use openraft::storage::{EntryResponder, IOFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{
    Config, EntryPayload, OptionalSend, RaftLogReader, RaftNetworkV2, RaftSnapshotBuilder,
    ReadPolicy, ServerState, SnapshotPolicy,
};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use ticketd_raft::{NodeAddr, Proposal};
use ticketd_store::machine::Reply;
use ticketd_store::{
    Backend, Command, Machine, MemBackend, Query, QueryResult, Request, WriteSet, COLUMN_FAMILIES,
};

use crate::simrt::SimRt;
use ticketd_checker::history::{read_pos, write_pos, Call, Cons, History, Line, OpType, Ret};
use ticketd_checker::{self as checker, Report};
use ticketd_workload::{self as workload, dt_id, SaleClient, Seen, Shared, Workload};

openraft::declare_raft_types!(
    /// ticketd's Raft types on a seeded runtime.
    pub SimTypes:
        D = Proposal,
        R = Vec<Reply>,
        Node = NodeAddr,
        AsyncRuntime = SimRt,
);

type C = SimTypes;
type SimRaft = openraft::Raft<C, SimSm>;

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

// ---------------------------------------------------------------- log storage

#[derive(Clone, Default)]
struct LogData {
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
    last_purged: Option<LogIdOf<C>>,
    log: BTreeMap<u64, EntryOf<C>>,
}

/// A node's log "disk": what it reads (`current`) and what survives a crash (`durable`).
#[derive(Default)]
struct LogDisk {
    current: LogData,
    durable: LogData,
    pending: Vec<IOFlushed<C>>,
}

#[derive(Clone)]
struct SimLog {
    node: u64,
    disk: Arc<Mutex<LogDisk>>,
    oracle: Arc<Mutex<Oracle>>,
}

impl RaftLogReader<C> for SimLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        let d = self.disk.lock().expect("log lock");
        Ok(d.current.log.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.disk.lock().expect("log lock").current.vote)
    }
}

impl RaftLogStorage<C> for SimLog {
    type LogReader = SimLog;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let d = self.disk.lock().expect("log lock");
        let last = d.current.log.values().next_back().map(|e| e.log_id());
        Ok(LogState {
            last_log_id: last.or(d.current.last_purged),
            last_purged_log_id: d.current.last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        // Durable before returning, as `save_vote` fsyncs.
        let mut d = self.disk.lock().expect("log lock");
        d.current.vote = Some(*vote);
        d.durable.vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.disk.lock().expect("log lock").current.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.disk.lock().expect("log lock").current.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut d = self.disk.lock().expect("log lock");
        let mut oracle = self.oracle.lock().expect("oracle lock");
        for e in entries {
            let log_id = e.log_id();
            let leader = log_id.committed_leader_id();
            oracle.appended(
                self.node,
                e.index(),
                leader.term,
                leader.node_id,
                format!("{:?}", e.payload),
            );
            d.current.log.insert(e.index(), e);
        }
        // Durable (and reported so) only at the next simulated fsync.
        d.pending.push(callback);
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = last.map(|l| l.index() + 1).unwrap_or(0);
        let mut d = self.disk.lock().expect("log lock");
        let _ = d.current.log.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let mut d = self.disk.lock().expect("log lock");
        d.current.last_purged = Some(log_id);
        let keep = d.current.log.split_off(&(log_id.index() + 1));
        d.current.log = keep;
        Ok(())
    }
}

/// The simulated fsync: everything written so far becomes durable, then the callbacks run.
fn flush(disk: &Mutex<LogDisk>) {
    let pending = {
        let mut d = disk.lock().expect("log lock");
        // The vote is durable already (save_vote), so current and durable agree on it.
        d.durable = d.current.clone();
        std::mem::take(&mut d.pending)
    };
    for cb in pending {
        cb.io_completed(Ok(()));
    }
}

// ---------------------------------------------------------------- state machine

/// A snapshot: every state column family and the position it reflects.
#[derive(Clone, Serialize, Deserialize)]
struct SnapData {
    records: Vec<(String, Vec<u8>, Vec<u8>)>,
}

/// A node's state-machine "disk": its last snapshot, what survives a crash.
type SmDisk = Arc<Mutex<Option<(SnapshotMetaOf<C>, SnapData)>>>;

struct SmState {
    machine: Machine,
    backend: MemBackend,
    applied: Option<LogIdOf<C>>,
    membership: StoredMembershipOf<C>,
}

/// The invariants checked while a simulation runs, fed by every node's log (each entry it
/// appends) and state machine (each entry it applies).
///
/// ticketd runs openraft with its default leader ids, `(term, node)`: a term may see several
/// leaders one after another, so "one leader per term" is not the invariant; an entry is named
/// by its log id (leader id and index) instead.
#[derive(Debug, Default)]
pub struct Oracle {
    /// (term, leader, index) -> payload of every entry appended anywhere.
    logged: BTreeMap<(u64, u64, u64), String>,
    /// index -> (term, leader, payload) of the entry first applied there anywhere.
    applied: BTreeMap<u64, (u64, u64, String)>,
    /// What broke, in the order seen.
    pub violations: Vec<String>,
}

impl Oracle {
    /// Log matching: one log id names one entry. A leader never proposes two entries at one
    /// index in its leadership, so every node that appends `(term, leader, index)` appends the
    /// same payload.
    pub fn appended(&mut self, node: u64, index: u64, term: u64, leader: u64, payload: String) {
        match self.logged.get(&(term, leader, index)) {
            Some(p) if *p != payload => self.violations.push(format!(
                "log matching: node {node} appended {payload} as log id (term {term}, leader {leader}, index {index}), which another append named {p}"
            )),
            Some(_) => {}
            None => {
                self.logged.insert((term, leader, index), payload);
            }
        }
    }

    /// State machine safety: no two nodes apply different entries at one index.
    pub fn applied(&mut self, node: u64, index: u64, term: u64, leader: u64, payload: String) {
        match self.applied.get(&index) {
            Some((t, l, w)) if (*t, *l, w) != (term, leader, &payload) => {
                let v = format!(
                    "state machine safety: node {node} applied {payload} (term {term}, leader {leader}) at index {index}, another node applied {w} (term {t}, leader {l})"
                );
                self.violations.push(v);
            }
            Some(_) => {}
            None => {
                self.applied.insert(index, (term, leader, payload));
            }
        }
    }
}

#[derive(Clone)]
struct SimSm {
    node: u64,
    state: Arc<Mutex<SmState>>,
    /// The last snapshot: what survives a crash.
    disk: SmDisk,
    oracle: Arc<Mutex<Oracle>>,
}

fn restore(data: &SnapData) -> io::Result<(Machine, MemBackend)> {
    let backend = MemBackend::new();
    let mut ws = WriteSet::new();
    for (cf, k, v) in &data.records {
        let cf = COLUMN_FAMILIES
            .iter()
            .find(|c| **c == cf.as_str())
            .ok_or_else(|| io_err(format!("unknown column family {cf}")))?;
        ws.put(cf, k.clone(), v.clone());
    }
    backend.write(&ws).map_err(io_err)?;
    let machine = Machine::open(&backend).map_err(io_err)?;
    Ok((machine, backend))
}

impl SimSm {
    /// The state machine as a (re)started node finds it: its last snapshot.
    fn open(node: u64, disk: SmDisk, oracle: Arc<Mutex<Oracle>>) -> io::Result<Self> {
        let snap = disk.lock().expect("sm disk lock").clone();
        let state = match snap {
            None => SmState {
                machine: Machine::open(&MemBackend::new()).map_err(io_err)?,
                backend: MemBackend::new(),
                applied: None,
                membership: Default::default(),
            },
            Some((meta, data)) => {
                let (machine, backend) = restore(&data)?;
                SmState {
                    machine,
                    backend,
                    applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                }
            }
        };
        Ok(Self {
            node,
            state: Arc::new(Mutex::new(state)),
            disk,
            oracle,
        })
    }

    fn query(&self, q: &Query) -> (QueryResult, u64) {
        let s = self.state.lock().expect("sm lock");
        (
            s.machine.query(q),
            s.applied.map(|l| l.index()).unwrap_or(0),
        )
    }
}

impl RaftStateMachine<C> for SimSm {
    type SnapshotData = SnapData;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        let s = self.state.lock().expect("sm lock");
        Ok((s.applied, s.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut received = Vec::new();
        while let Some(item) = entries.try_next().await? {
            received.push(item);
        }
        let mut responses = Vec::new();
        {
            let mut s = self.state.lock().expect("sm lock");
            let mut oracle = self.oracle.lock().expect("oracle lock");
            for (entry, responder) in received {
                let log_id = entry.log_id();
                let leader = log_id.committed_leader_id();
                oracle.applied(
                    self.node,
                    log_id.index(),
                    leader.term,
                    leader.node_id,
                    format!("{:?}", entry.payload),
                );
                let reply = match &entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(p) => {
                        let mut ws = WriteSet::new();
                        let r = s.machine.apply_batch(log_id.index(), &p.0, &mut ws);
                        s.backend.write(&ws).map_err(io_err)?;
                        r
                    }
                    EntryPayload::Membership(m) => {
                        s.membership = StoredMembershipOf::<C>::new(Some(log_id), m.clone());
                        Vec::new()
                    }
                };
                s.applied = Some(log_id);
                if let Some(r) = responder {
                    responses.push((r, reply));
                }
            }
        }
        for (r, reply) in responses {
            r.send(reply);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: SnapData,
    ) -> Result<(), io::Error> {
        let (machine, backend) = restore(&snapshot)?;
        let mut s = self.state.lock().expect("sm lock");
        *s = SmState {
            machine,
            backend,
            applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        *self.disk.lock().expect("sm disk lock") = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, SnapData>>, io::Error> {
        Ok(self
            .disk
            .lock()
            .expect("sm disk lock")
            .clone()
            .map(|(meta, snapshot)| SnapshotOf::<C, SnapData> { meta, snapshot }))
    }
}

impl RaftSnapshotBuilder<C> for SimSm {
    type SnapshotData = SnapData;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, SnapData>, io::Error> {
        let (meta, data) = {
            let s = self.state.lock().expect("sm lock");
            let mut records = Vec::new();
            for cf in COLUMN_FAMILIES {
                s.backend
                    .scan(cf, &mut |k, v| {
                        records.push((cf.to_string(), k.to_vec(), v.to_vec()));
                        Ok(())
                    })
                    .map_err(io_err)?;
            }
            let meta = SnapshotMetaOf::<C> {
                last_log_id: s.applied,
                last_membership: s.membership.clone(),
            };
            (meta, SnapData { records })
        };
        *self.disk.lock().expect("sm disk lock") = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<C, SnapData> {
            meta,
            snapshot: data,
        })
    }
}

// ---------------------------------------------------------------- network

struct NetState {
    rafts: BTreeMap<u64, (SimRaft, SimSm)>,
    /// Directed links that drop everything.
    cut: BTreeSet<(u64, u64)>,
    /// Probability that a message (request or reply) is lost.
    loss: f64,
    rng: ChaCha8Rng,
}

type Net = Arc<Mutex<NetState>>;

#[derive(Clone)]
struct SimNetFactory {
    from: u64,
    net: Net,
}

struct SimPeer {
    from: u64,
    to: u64,
    net: Net,
}

impl RaftNetworkFactory<C> for SimNetFactory {
    type Network = SimPeer;

    async fn new_client(&mut self, target: u64, _node: &NodeAddr) -> SimPeer {
        SimPeer {
            from: self.from,
            to: target,
            net: self.net.clone(),
        }
    }
}

enum Hop {
    Down,
    Lost,
    Ok(Duration),
}

fn hop(net: &Net, from: u64, to: u64) -> Hop {
    let mut n = net.lock().expect("net lock");
    if !n.rafts.contains_key(&from) || !n.rafts.contains_key(&to) || n.cut.contains(&(from, to)) {
        return Hop::Down;
    }
    let loss = n.loss;
    if loss > 0.0 && n.rng.random_bool(loss) {
        return Hop::Lost;
    }
    Hop::Ok(Duration::from_micros(n.rng.random_range(200..5_000)))
}

fn rpc_err(what: &str) -> RPCError<C> {
    RPCError::Unreachable(Unreachable::new(&io_err(what)))
}

impl SimPeer {
    /// Delivers a request, runs it on the target, delivers the reply; either leg may fail.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, RPCError<C>>
    where
        F: FnOnce(SimRaft) -> Fut,
        Fut: std::future::Future<Output = Result<T, RPCError<C>>>,
    {
        match hop(&self.net, self.from, self.to) {
            Hop::Down => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Err(rpc_err("link down"));
            }
            Hop::Lost => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Err(RPCError::Network(NetworkError::new(&io_err(
                    "request lost",
                ))));
            }
            Hop::Ok(d) => tokio::time::sleep(d).await,
        }
        let target = {
            let n = self.net.lock().expect("net lock");
            n.rafts.get(&self.to).map(|(r, _)| r.clone())
        };
        let Some(target) = target else {
            return Err(rpc_err("target down"));
        };
        let out = f(target).await?;
        match hop(&self.net, self.to, self.from) {
            Hop::Down => Err(rpc_err("link down on reply")),
            Hop::Lost => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(RPCError::Network(NetworkError::new(&io_err("reply lost"))))
            }
            Hop::Ok(d) => {
                tokio::time::sleep(d).await;
                Ok(out)
            }
        }
    }
}

fn net_err(e: impl std::error::Error + 'static) -> RPCError<C> {
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetworkV2<C> for SimPeer {
    type SnapshotData = SnapData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        self.call(|r| async move { r.append_entries(rpc).await.map_err(net_err) })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        _option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(|r| async move { r.vote(rpc).await.map_err(net_err) })
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        _option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(|r| async move { r.pre_vote(rpc).await.map_err(net_err) })
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        self.call(|r| async move { r.handle_transfer_leader(req).await.map_err(net_err) })
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, SnapData>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        self.call(|r| async move {
            r.install_full_snapshot(vote, snapshot)
                .await
                .map_err(net_err)
        })
        .await
        .map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&other)),
        })
    }
}

// ---------------------------------------------------------------- the simulation

/// Parameters of one simulation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    /// Voters.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Ops per client.
    pub ops_per_client: usize,
    /// Faults on (crashes, partitions, loss).
    pub faults: bool,
    /// openraft's `enable_leader_restore`; `None` = openraft's default (true). The default here
    /// is what `ticketd node` runs with ([`ticketd_raft::ENABLE_LEADER_RESTORE`]).
    pub leader_restore: Option<bool>,
    /// What the clients do.
    pub workload: Workload,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            clients: 4,
            ops_per_client: 60,
            faults: true,
            leader_restore: Some(ticketd_raft::ENABLE_LEADER_RESTORE),
            workload: Workload::Sale,
        }
    }
}

/// What one simulation found.
#[derive(Debug, Clone, Serialize)]
pub struct SimOutcome {
    /// The seed.
    pub seed: u64,
    /// Violations found while running (election safety, state machine safety) and after.
    pub violations: Vec<String>,
    /// The history checkers' report.
    pub report: Report,
    /// SHA-256 of the history: equal for equal seeds (the determinism check).
    pub history_digest: String,
    /// The history.
    #[serde(skip)]
    pub history: Vec<Line>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Simulated ms.
    pub sim_ms: u64,
}

struct World {
    cfg: SimConfig,
    net: Net,
    log_disks: BTreeMap<u64, Arc<Mutex<LogDisk>>>,
    sm_disks: BTreeMap<u64, SmDisk>,
    oracle: Arc<Mutex<Oracle>>,
    config: Arc<Config>,
    /// Bumped on each crash of a node: its flusher of the old incarnation stops.
    incarnation: BTreeMap<u64, Arc<AtomicU64>>,
    lines: Arc<Mutex<Vec<Line>>>,
    start: tokio::time::Instant,
    violations: Arc<Mutex<Vec<String>>>,
}

impl World {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn record(&self, l: Line) {
        self.lines.lock().expect("lines lock").push(l);
    }

    fn alive(&self) -> Vec<u64> {
        self.net
            .lock()
            .expect("net lock")
            .rafts
            .keys()
            .copied()
            .collect()
    }

    fn handle(&self, id: u64) -> Option<(SimRaft, SimSm)> {
        self.net.lock().expect("net lock").rafts.get(&id).cloned()
    }

    fn leader_guess(&self) -> Option<u64> {
        let n = self.net.lock().expect("net lock");
        n.rafts
            .iter()
            .find(|(_, (r, _))| r.metrics().borrow_watched().state == ServerState::Leader)
            .map(|(id, _)| *id)
    }
}

async fn client(world: Arc<World>, idx: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0xc11e_u64 << 32) ^ idx as u64);
    let client_id = format!("sim-c{idx}");
    let mut process = idx as u64;
    let mut past: Vec<(String, Command)> = Vec::new();
    for n in 0..world.cfg.ops_per_client {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..40))).await;
        let op = (idx * 1_000_000 + n) as u64;
        let venue = format!("v{}", n / 6 + rng.random_range(0..3usize));
        let roll: f64 = rng.random();
        let call = if roll < 0.5 {
            let key = format!("k{op}");
            let command = Command::CreateVenue {
                venue_id: venue,
                name: format!("n{op}"),
                city: "Sim".into(),
            };
            past.push((key.clone(), command.clone()));
            Call::Write {
                client_id: client_id.clone(),
                key,
                command,
                via: None,
            }
        } else if roll < 0.55 && !past.is_empty() {
            let (key, command) = past[rng.random_range(0..past.len())].clone();
            Call::Write {
                client_id: client_id.clone(),
                key,
                command,
                via: None,
            }
        } else {
            Call::Read {
                query: Query::GetVenue { venue_id: venue },
                consistency: if rng.random_bool(0.8) {
                    Cons::Linearizable
                } else {
                    Cons::Local
                },
                node: None,
                final_read: false,
            }
        };
        let node = target(&world, &call, &mut rng).await;
        if type_of(&perform(&world, process, op, call, node).await) == OpType::Info {
            process += world.cfg.clients as u64;
        }
    }
}

/// The node an op goes to: a local read to the node it names (or any live one); everything
/// else to the leader, waiting a little for one after a crash or partition, else to any node
/// (which refuses with a forward-to-leader error: a failed op).
async fn target(world: &World, call: &Call, rng: &mut ChaCha8Rng) -> Option<u64> {
    let alive = world.alive();
    match call {
        Call::Read {
            consistency: Cons::Local,
            node,
            ..
        } => node
            .filter(|n| alive.contains(n))
            .or_else(|| alive.choose(rng).copied()),
        _ => {
            let mut leader = world.leader_guess();
            for _ in 0..20 {
                if leader.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                leader = world.leader_guess();
            }
            leader.or_else(|| alive.choose(rng).copied())
        }
    }
}

/// A client of the sale workload; the dt on sale moves on with the client's op count.
async fn sale_client(
    world: Arc<World>,
    idx: usize,
    seed: u64,
    dts: usize,
    shared: Arc<Mutex<Shared>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x5a1e_u64 << 32) ^ idx as u64);
    let mut sc = SaleClient::new(idx, world.cfg.clients, seed, format!("sim-c{idx}"));
    let nodes: Vec<u64> = (1..=world.cfg.nodes).collect();
    let mut process = idx as u64;
    let ops = world.cfg.ops_per_client;
    for n in 0..ops {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1..40))).await;
        let op = (idx * 1_000_000 + n) as u64;
        let call = {
            let t = shared.lock().expect("shared lock");
            sc.next(&dt_id((n * dts / ops.max(1)).min(dts - 1)), &t, &nodes)
        };
        let node = target(&world, &call, &mut rng).await;
        let line = perform(&world, process, op, call.clone(), node).await;
        sc.observe(
            &call,
            Seen::of(&line),
            workload::effect_index(&line),
            &mut shared.lock().expect("shared lock"),
        );
        if type_of(&line) == OpType::Info {
            process += world.cfg.clients as u64;
        }
    }
}

/// Performs `call` through the leader until it is answered, at most `tries` times.
async fn until_answered(
    world: &World,
    process: u64,
    op: &mut u64,
    call: &Call,
    tries: usize,
) -> Option<Line> {
    for _ in 0..tries {
        *op += 1;
        let node = world.leader_guess();
        let line = perform(world, process, *op, call.clone(), node).await;
        if type_of(&line) == OpType::Ok {
            return Some(line);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Runs one op against `node`; returns its completion line.
async fn perform(world: &World, process: u64, op: u64, call: Call, node: Option<u64>) -> Line {
    world.record(Line::Invoke {
        time_ns: world.now(),
        process,
        op,
        f: call.f().into(),
        call: call.clone(),
    });
    let f = call.f().to_string();
    let h = node.and_then(|n| world.handle(n));
    let fail = |error: String, call: Call| Line::Fail {
        time_ns: world.now(),
        process,
        op,
        f: f.clone(),
        call,
        error,
    };
    let Some((raft, sm)) = h else {
        let line = fail("node down".into(), call);
        world.record(line.clone());
        return line;
    };
    let line = match &call {
        Call::Write {
            client_id,
            key,
            command,
            ..
        } => {
            let req = Proposal::one(Request {
                client_id: client_id.clone(),
                idempotency_key: key.clone(),
                stamped_at_ms: (world.now() / 1_000_000) as i64,
                command: command.clone(),
            });
            match tokio::time::timeout(Duration::from_secs(3), raft.client_write(req)).await {
                Ok(Ok(resp)) => match resp.data.first() {
                    Some(reply) => Line::Ok {
                        time_ns: world.now(),
                        process,
                        op,
                        f: f.clone(),
                        ret: Ret::from_reply(reply),
                        index: write_pos(resp.log_id.index(), 0),
                        call: call.clone(),
                    },
                    None => Line::Info {
                        time_ns: world.now(),
                        process,
                        op,
                        f: f.clone(),
                        call: call.clone(),
                        error: "no reply".into(),
                    },
                },
                Ok(Err(e)) if e.forward_to_leader().is_some() => fail(e.to_string(), call.clone()),
                Ok(Err(e)) => Line::Info {
                    time_ns: world.now(),
                    process,
                    op,
                    f: f.clone(),
                    call: call.clone(),
                    error: e.to_string(),
                },
                Err(_) => Line::Info {
                    time_ns: world.now(),
                    process,
                    op,
                    f: f.clone(),
                    call: call.clone(),
                    error: "timeout".into(),
                },
            }
        }
        Call::Read {
            query, consistency, ..
        } => {
            let ready = match consistency {
                Cons::Local => Ok(()),
                Cons::Linearizable => {
                    match tokio::time::timeout(
                        Duration::from_secs(3),
                        raft.ensure_linearizable(ReadPolicy::ReadIndex),
                    )
                    .await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("timeout".to_string()),
                    }
                }
            };
            match ready {
                Ok(()) => {
                    let (result, index) = sm.query(query);
                    Line::Ok {
                        time_ns: world.now(),
                        process,
                        op,
                        f: f.clone(),
                        ret: Ret::Read { result },
                        index: read_pos(index),
                        call: call.clone(),
                    }
                }
                Err(e) => fail(e, call.clone()),
            }
        }
    };
    world.record(line.clone());
    line
}

/// How a completion line ended.
fn type_of(line: &Line) -> OpType {
    match line {
        Line::Ok { .. } => OpType::Ok,
        Line::Fail { .. } => OpType::Fail,
        _ => OpType::Info,
    }
}

async fn nemesis(
    world: Arc<World>,
    seed: u64,
    stop: Arc<AtomicU64>,
    faults: Arc<Mutex<BTreeMap<String, u64>>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65);
    let nodes: Vec<u64> = (1..=world.cfg.nodes).collect();
    let mut down: Vec<u64> = Vec::new();
    let mut restarts = 0u64;
    while stop.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1_200))).await;
        if stop.load(Ordering::SeqCst) != 0 {
            break;
        }
        let kind = *["crash", "crash-leader", "partition", "split", "loss"]
            .choose(&mut rng)
            .expect("kinds");
        *faults
            .lock()
            .expect("faults")
            .entry(kind.into())
            .or_default() += 1;
        match kind {
            "crash" | "crash-leader" => {
                let victim = if kind == "crash-leader" {
                    world.leader_guess()
                } else {
                    nodes.choose(&mut rng).copied()
                };
                if let Some(v) = victim {
                    if world.handle(v).is_some() {
                        crash_node(&world, v).await;
                        down.push(v);
                    }
                }
            }
            "partition" => {
                let v = *nodes.choose(&mut rng).expect("nodes");
                let mut n = world.net.lock().expect("net lock");
                for o in &nodes {
                    if *o != v {
                        n.cut.insert((v, *o));
                        n.cut.insert((*o, v));
                    }
                }
            }
            "split" => {
                let mut s = nodes.clone();
                s.shuffle(&mut rng);
                let k = (s.len() - 1) / 2;
                let (a, b) = s.split_at(k.max(1));
                let mut n = world.net.lock().expect("net lock");
                for x in a {
                    for y in b {
                        n.cut.insert((*x, *y));
                        n.cut.insert((*y, *x));
                    }
                }
            }
            _ => {
                world.net.lock().expect("net lock").loss = rng.random_range(0.05..0.3);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2_000))).await;
        {
            let mut n = world.net.lock().expect("net lock");
            n.cut.clear();
            n.loss = 0.0;
        }
        for v in down.drain(..) {
            restarts += 1;
            restart_node(&world, v, seed ^ (restarts << 8) ^ v).await;
        }
    }
}

async fn crash_node(world: &World, id: u64) {
    let h = world.net.lock().expect("net lock").rafts.remove(&id);
    world.incarnation[&id].fetch_add(1, Ordering::SeqCst);
    let revert = || {
        let mut d = world.log_disks[&id].lock().expect("log lock");
        d.current = d.durable.clone();
        d.pending.clear();
    };
    revert();
    if let Some((raft, _)) = h {
        let _ = tokio::time::timeout(Duration::from_secs(5), raft.shutdown()).await;
    }
    revert();
    world.record(Line::Fault {
        time_ns: world.now(),
        fault: "crash".into(),
        phase: "start".into(),
        nodes: vec![id],
        status: ticketd_checker::history::FaultStatus::Installed,
        detail: String::new(),
    });
}

/// Starts node `id` on what its disks hold, with its flusher (a simulated fsync every 0.5-3 ms).
async fn spawn_node(world: &World, id: u64, flush_seed: u64) -> anyhow::Result<()> {
    let sm = SimSm::open(id, world.sm_disks[&id].clone(), world.oracle.clone())?;
    let log = SimLog {
        node: id,
        disk: world.log_disks[&id].clone(),
        oracle: world.oracle.clone(),
    };
    let raft = SimRaft::new(
        id,
        world.config.clone(),
        SimNetFactory {
            from: id,
            net: world.net.clone(),
        },
        log,
        sm.clone(),
    )
    .await?;
    world
        .net
        .lock()
        .expect("net lock")
        .rafts
        .insert(id, (raft, sm));
    let inc = world.incarnation[&id].clone();
    let mine = inc.load(Ordering::SeqCst);
    let disk = world.log_disks[&id].clone();
    SimRt::spawn(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(flush_seed);
        while inc.load(Ordering::SeqCst) == mine {
            tokio::time::sleep(Duration::from_micros(rng.random_range(500..3_000))).await;
            if inc.load(Ordering::SeqCst) != mine {
                break;
            }
            flush(&disk);
        }
    });
    Ok(())
}

async fn restart_node(world: &World, id: u64, flush_seed: u64) {
    if let Err(e) = spawn_node(world, id, flush_seed).await {
        world
            .violations
            .lock()
            .expect("violations")
            .push(format!("node {id} failed to restart: {e:#}"));
    }
    world.record(Line::Fault {
        time_ns: world.now(),
        fault: "crash".into(),
        phase: "stop".into(),
        nodes: vec![id],
        status: ticketd_checker::history::FaultStatus::Installed,
        detail: String::new(),
    });
}

/// Runs one simulation on its own paused-clock runtime. The same seed gives the same outcome.
pub fn run(seed: u64, cfg: &SimConfig) -> anyhow::Result<SimOutcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let cfg = cfg.clone();
    rt.block_on(SimRt::scope(seed, simulate(seed, cfg)))
}

async fn simulate(seed: u64, cfg: SimConfig) -> anyhow::Result<SimOutcome> {
    let config = Arc::new(
        Config {
            cluster_name: "sim".into(),
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(64),
            max_in_snapshot_log_to_keep: 16,
            enable_pre_vote: Some(true),
            enable_leader_restore: cfg.leader_restore,
            ..Default::default()
        }
        .validate()?,
    );
    let ids: Vec<u64> = (1..=cfg.nodes).collect();
    let net: Net = Arc::new(Mutex::new(NetState {
        rafts: BTreeMap::new(),
        cut: BTreeSet::new(),
        loss: 0.0,
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_7477),
    }));
    let world = World {
        cfg: cfg.clone(),
        net,
        log_disks: ids
            .iter()
            .map(|i| (*i, Arc::new(Mutex::new(LogDisk::default()))))
            .collect(),
        sm_disks: ids
            .iter()
            .map(|i| (*i, Arc::new(Mutex::new(None))))
            .collect(),
        oracle: Arc::new(Mutex::new(Oracle::default())),
        config,
        incarnation: ids
            .iter()
            .map(|i| (*i, Arc::new(AtomicU64::new(0))))
            .collect(),
        lines: Arc::new(Mutex::new(Vec::new())),
        start: tokio::time::Instant::now(),
        violations: Arc::new(Mutex::new(Vec::new())),
    };
    world.record(Line::Meta {
        time_ns: 0,
        seed,
        // Log time is simulated time (ms since the start): the checker's clock starts at 0.
        config: {
            let mut c = serde_json::to_value(&cfg)?;
            c["start_unix_ms"] = serde_json::json!(0);
            c
        },
    });
    for id in &ids {
        spawn_node(&world, *id, seed ^ (id << 40)).await?;
    }
    let members: BTreeMap<u64, NodeAddr> = ids
        .iter()
        .map(|i| {
            (
                *i,
                NodeAddr {
                    addr: format!("sim-{i}"),
                },
            )
        })
        .collect();
    let (first, _) = world.handle(1).expect("node 1");
    first.initialize(members).await?;
    let world = Arc::new(world);

    let stop = Arc::new(AtomicU64::new(0));
    let faults = Arc::new(Mutex::new(BTreeMap::new()));
    let nem = cfg
        .faults
        .then(|| SimRt::spawn(nemesis(world.clone(), seed, stop.clone(), faults.clone())));
    let dts = 3;
    if cfg.workload == Workload::Sale {
        let mut op = 800_000_000u64;
        for (key, command) in workload::sale_setup(dts, cfg.clients) {
            let call = Call::Write {
                client_id: workload::SETUP_CLIENT.into(),
                key,
                command,
                via: None,
            };
            if until_answered(&world, 800_000, &mut op, &call, 100)
                .await
                .is_none()
            {
                anyhow::bail!("seed {seed}: setup write not answered: {call:?}");
            }
        }
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let clients: Vec<_> = (0..cfg.clients)
        .map(|i| match cfg.workload {
            Workload::Register => SimRt::spawn(client(world.clone(), i, seed)),
            Workload::Sale => {
                SimRt::spawn(sale_client(world.clone(), i, seed, dts, shared.clone()))
            }
        })
        .collect();
    for c in clients {
        c.await?;
    }
    stop.store(1, Ordering::SeqCst);
    if let Some(n) = nem {
        n.await?;
    }

    // Healed (the nemesis heals before it returns): wait for a leader, then final reads.
    let mut leader = None;
    for _ in 0..600 {
        if let Some(l) = world.leader_guess() {
            leader = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut violations: Vec<String> = Vec::new();
    match leader {
        None => violations.push("no leader 30 s after healing".into()),
        Some(l) => {
            // Every write of unknown fate resubmitted with its key, then every object read.
            let mut op = 900_000_000u64;
            let lines = world.lines.lock().expect("lines").clone();
            for call in workload::unsettled_writes(&lines) {
                until_answered(&world, 900_000, &mut op, &call, 20).await;
            }
            let lines = world.lines.lock().expect("lines").clone();
            for query in workload::final_queries(&lines) {
                let call = Call::Read {
                    query,
                    consistency: Cons::Linearizable,
                    node: None,
                    final_read: true,
                };
                until_answered(&world, 900_001, &mut op, &call, 20).await;
            }
            // Convergence: every node applies the leader's last log, then digests compare.
            let target = world
                .handle(l)
                .map(|(r, _)| r.metrics().borrow_watched().last_log_index.unwrap_or(0))
                .unwrap_or(0);
            for _ in 0..600 {
                let behind = world.alive().into_iter().any(|id| {
                    world
                        .handle(id)
                        .map(|(_, sm)| sm.query(&Query::Digest).1 < target)
                        .unwrap_or(false)
                });
                if !behind {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for id in world.alive() {
                op += 1;
                let call = Call::Read {
                    query: Query::Digest,
                    consistency: Cons::Local,
                    node: Some(id),
                    final_read: true,
                };
                perform(&world, 900_002, op, call, Some(id)).await;
            }
        }
    }
    let sim_ms = world.start.elapsed().as_millis() as u64;
    for id in world.alive() {
        if let Some((r, _)) = world.handle(id) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r.shutdown()).await;
        }
    }
    violations.extend(world.violations.lock().expect("violations").iter().cloned());
    violations.extend(
        world
            .oracle
            .lock()
            .expect("oracle")
            .violations
            .iter()
            .cloned(),
    );
    let lines = world.lines.lock().expect("lines").clone();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(serde_json::to_vec(l)?);
    }
    let history_digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let report = checker::check(&History::from_lines(lines.clone())?);
    let faults = faults.lock().expect("faults").clone();
    Ok(SimOutcome {
        seed,
        violations,
        report,
        history_digest,
        history: lines,
        faults,
        sim_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::Oracle;

    #[test]
    fn one_log_id_with_two_payloads_breaks_log_matching() {
        let mut o = Oracle::default();
        o.appended(1, 5, 2, 1, "a".into());
        o.appended(2, 5, 2, 1, "a".into());
        o.appended(3, 5, 3, 3, "b".into());
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        // The leader of term 2 lost index 5 and proposed something else there.
        o.appended(1, 5, 2, 1, "c".into());
        assert_eq!(o.violations.len(), 1);
        assert!(
            o.violations[0].starts_with("log matching"),
            "{:?}",
            o.violations
        );
    }

    #[test]
    fn two_entries_applied_at_one_index_break_state_machine_safety() {
        let mut o = Oracle::default();
        o.applied(1, 7, 2, 1, "a".into());
        o.applied(2, 7, 2, 1, "a".into());
        o.applied(2, 8, 3, 2, "b".into());
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        o.applied(3, 7, 3, 2, "d".into());
        assert_eq!(o.violations.len(), 1);
        assert!(
            o.violations[0].starts_with("state machine safety"),
            "{:?}",
            o.violations
        );
    }
}
