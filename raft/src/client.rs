//! The cluster client: knows the nodes, tracks the leader, follows leader hints, and retries a
//! write on another node with the same idempotency key within a bounded number of attempts and a
//! total deadline. Used by `ticketctl`, the HTTP API and the tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ticketd_store::machine::Reply;
use ticketd_store::{Command, Query, QueryResult};
use tonic::Code;

use crate::channels::Channels;
use crate::pb;
use crate::tls::Transport;

/// How long `init` waits for the new cluster's leader to raise the cluster version.
pub const INIT_RAISE_DEADLINE: Duration = Duration::from_secs(30);
/// Why a call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node could be reached.
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// A write may or may not have been applied: retry it with the same idempotency key.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The cluster refused the request as invalid or not allowed now.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The server failed.
    #[error("server error: {0}")]
    Server(String),
    /// The node refused this caller: no client certificate, one it does not accept, or an
    /// identity that may not make this call. Nothing was applied.
    #[error("not authorized: {0}")]
    Denied(String),
}

/// Consistency of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// ReadIndex through the leader, then the local state: sees every write acknowledged before.
    Linearizable,
    /// The node's applied state as it is: may lag, says by how much through the applied index.
    Local,
}

/// A committed write.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// The state machine's reply.
    pub reply: Reply,
    /// Log index of the entry that carried this attempt.
    pub log_index: u64,
    /// This attempt's place in that entry's batch.
    pub log_seq: u32,
    /// Node that answered.
    pub served_by: String,
}

/// A read answer.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// The answer.
    pub result: QueryResult,
    /// Applied index of the node that answered.
    pub applied_index: u64,
}

/// Limits of the client's retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Most attempts of one call across all nodes.
    pub attempts_max: u32,
    /// Deadline of one attempt.
    pub attempt_timeout: Duration,
    /// Deadline of the whole call.
    pub total_deadline: Duration,
    /// Pause between attempts that found no leader (doubles up to 8x).
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: 32,
            attempt_timeout: Duration::from_secs(3),
            total_deadline: Duration::from_secs(15),
            // 10, 20, 40, then 80 ms: a new leader (elected within about half a second of the
            // old one's death) is found within 80 ms of its election; 32 attempts span about
            // 2.4 s without a leader. A failed attempt costs a refused connection or a hint.
            backoff: Duration::from_millis(10),
        }
    }
}

/// Most writes a node takes in one `WriteBatch` call.
pub const WRITE_BATCH_MAX: usize = 1024;

/// Digest entries `hashkv` proposes at most, when some endpoint passes one without digesting it.
pub const HASHKV_ROUNDS: u32 = 3;

fn is_state(a: &Result<pb::DigestStatus, ClientError>, state: pb::DigestState) -> bool {
    a.as_ref().is_ok_and(|s| s.state == state as i32)
}

/// Coalescing of concurrent writes into `WriteBatch` calls: each write's first attempt shares
/// one call with the writes queued beside it; later attempts (after a failure, a redirect or a
/// full queue) go alone through the usual retry loop, with the same idempotency key.
#[derive(Debug, Clone)]
pub struct WriteBatching {
    /// Most writes in one call.
    pub max_writes: usize,
    /// Calls in flight at once; while all are busy, new writes queue and share the next call.
    pub in_flight: usize,
    /// Writes waiting for a call; a write that finds the queue full is sent alone.
    pub queue: usize,
}

impl Default for WriteBatching {
    fn default() -> Self {
        Self {
            max_writes: 256,
            in_flight: 4,
            queue: 4096,
        }
    }
}

/// Calls and writes sent through the batch path since start.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// `WriteBatch` calls made.
    pub calls: AtomicU64,
    /// Writes they carried.
    pub writes: AtomicU64,
}

/// A client of a ticketd cluster.
pub struct ClusterClient {
    nodes: Arc<Nodes>,
    policy: RetryPolicy,
    batcher: Option<Batcher>,
}

/// The nodes a client knows, its channels to them and its guess of the leader; shared by the
/// retry loop and the batch task.
struct Nodes {
    endpoints: Vec<String>,
    channels: Channels,
    leader: Mutex<Option<String>>,
}

impl Nodes {
    fn leader(&self) -> Option<String> {
        self.leader.lock().expect("leader lock poisoned").clone()
    }

    fn remember_leader(&self, addr: Option<String>) {
        *self.leader.lock().expect("leader lock poisoned") = addr;
    }

    fn channel(&self, addr: &str) -> Result<tonic::transport::Channel, ClientError> {
        self.channels
            .get(addr)
            .map_err(|e| ClientError::Unreachable(format!("{addr}: {e}")))
    }
}

/// What one node's `WriteReply` says: the write's result, where the leader is, or nothing known.
fn decode_write_reply(r: pb::WriteReply, addr: &str) -> Attempt<WriteResult> {
    if let Err(s) = crate::version::check_rpc_format("a write reply", r.format) {
        return Attempt::Next(ClientError::Server(format!("{addr}: {}", s.message())));
    }
    match r.result {
        Some(pb::write_reply::Result::ReplyJson(j)) => match serde_json::from_slice(&j) {
            Ok(reply) => Attempt::Done(WriteResult {
                reply,
                log_index: r.log_index,
                log_seq: r.log_seq,
                served_by: addr.to_string(),
            }),
            Err(e) => Attempt::Next(ClientError::Server(format!("bad reply: {e}"))),
        },
        Some(pb::write_reply::Result::NotLeader(h)) if h.known && h.leader_addr != addr => {
            Attempt::Redirect(h.leader_addr)
        }
        _ => Attempt::Next(ClientError::Unreachable(format!("{addr}: no leader known"))),
    }
}

struct Batcher {
    tx: tokio::sync::mpsc::Sender<Pending>,
    stats: Arc<BatchStats>,
}

/// A write waiting for a batch call.
struct Pending {
    req: pb::WriteRequest,
    tx: tokio::sync::oneshot::Sender<BatchOutcome>,
    queued: std::time::Instant,
}

/// What the batch attempt of one write came to.
enum BatchOutcome {
    Done(WriteResult),
    /// The cluster's verdict on this write (invalid, refused): no retry changes it.
    Final(ClientError),
    /// Try again alone; `unknown` when the batch attempt may have been applied.
    Retry {
        unknown: bool,
    },
}

/// What the batch task shares with the client.
#[derive(Clone)]
struct BatchShared {
    nodes: Arc<Nodes>,
    attempt_timeout: Duration,
    stats: Arc<BatchStats>,
}

/// Takes what is queued, at most `max_writes` at a time, into calls, at most `in_flight` of
/// them at once.
async fn run_batcher(
    shared: BatchShared,
    mut rx: tokio::sync::mpsc::Receiver<Pending>,
    cfg: WriteBatching,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.in_flight.max(1)));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(cfg.max_writes.min(64));
        batch.push(first);
        while batch.len() < cfg.max_writes {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            send_batch(&shared, batch).await;
            drop(slot);
        });
    }
}

/// One `WriteBatch` call to the leader (or a guess) and each write's outcome.
async fn send_batch(shared: &BatchShared, batch: Vec<Pending>) {
    for p in &batch {
        metrics::histogram!("ticketd_client_batch_wait_seconds")
            .record(p.queued.elapsed().as_secs_f64());
    }
    let call_started = std::time::Instant::now();
    let (reqs, txs): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.req, p.tx)).unzip();
    shared.stats.calls.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .writes
        .fetch_add(reqs.len() as u64, Ordering::Relaxed);
    let nodes = &shared.nodes;
    let addr = nodes.leader().unwrap_or_else(|| nodes.endpoints[0].clone());
    let retry_all = |txs: Vec<tokio::sync::oneshot::Sender<BatchOutcome>>, unknown: bool| {
        for tx in txs {
            let _ = tx.send(BatchOutcome::Retry { unknown });
        }
    };
    let channel = match nodes.channel(&addr) {
        Ok(c) => c,
        Err(_) => {
            nodes.remember_leader(None);
            return retry_all(txs, false);
        }
    };
    let n = reqs.len();
    let mut req = tonic::Request::new(pb::WriteBatchRequest {
        writes: reqs,
        forwarded: false,
    });
    req.set_timeout(shared.attempt_timeout);
    let items = match pb::client_client::ClientClient::new(channel)
        .write_batch(req)
        .await
    {
        Ok(r) => {
            metrics::histogram!("ticketd_client_batch_call_seconds")
                .record(call_started.elapsed().as_secs_f64());
            r.into_inner().items
        }
        Err(s) => {
            // The whole call failed: each write tries again alone, which classifies its own
            // errors; one that may have been proposed stays possibly applied.
            nodes.remember_leader(None);
            let unknown = matches!(classify(&s, true), ClientError::Unknown(_));
            return retry_all(txs, unknown);
        }
    };
    if items.len() != n {
        nodes.remember_leader(None);
        return retry_all(txs, true);
    }
    let mut answered = false;
    let mut hint = None;
    for (item, tx) in items.into_iter().zip(txs) {
        let outcome = match item.result {
            Some(pb::write_batch_item::Result::Reply(r)) => match decode_write_reply(r, &addr) {
                Attempt::Done(w) => {
                    answered = true;
                    BatchOutcome::Done(w)
                }
                Attempt::Redirect(to) => {
                    hint = Some(to);
                    BatchOutcome::Retry { unknown: false }
                }
                Attempt::Next(ClientError::Unreachable(_)) => {
                    BatchOutcome::Retry { unknown: false }
                }
                Attempt::Next(verdict) => BatchOutcome::Final(verdict),
            },
            Some(pb::write_batch_item::Result::Error(e)) => {
                let status = tonic::Status::new(Code::from(e.code), e.message);
                match classify(&status, true) {
                    ClientError::Unknown(_) => BatchOutcome::Retry { unknown: true },
                    ClientError::Unreachable(_) => BatchOutcome::Retry { unknown: false },
                    verdict => BatchOutcome::Final(verdict),
                }
            }
            None => BatchOutcome::Retry { unknown: true },
        };
        let _ = tx.send(outcome);
    }
    nodes.remember_leader(if answered { Some(addr) } else { hint });
}

enum Attempt<T> {
    Done(T),
    /// Try this address next.
    Redirect(String),
    /// Try another node; the error says what happened here.
    Next(ClientError),
}

fn classify(status: &tonic::Status, is_write: bool) -> ClientError {
    let msg = format!("{}: {}", status.code(), status.message());
    match status.code() {
        // A full proposal queue: nothing was proposed; another attempt may find room.
        Code::ResourceExhausted => ClientError::Unreachable(msg),
        Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
            ClientError::Rejected(msg)
        }
        // The node's authorization refused the call before anything happened.
        Code::Unauthenticated | Code::PermissionDenied => ClientError::Denied(msg),
        // The request may have reached a node and been proposed. tonic reports a connection
        // broken mid-call as `Unknown`; ticketd's own failures are `Internal`.
        Code::DeadlineExceeded | Code::Cancelled | Code::Unavailable | Code::Unknown
            if is_write =>
        {
            ClientError::Unknown(msg)
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            ClientError::Unreachable(msg)
        }
        _ => ClientError::Server(msg),
    }
}

impl ClusterClient {
    /// A client of the nodes at `endpoints` (`host:port`, gRPC), connecting over `transport`
    /// (mutual TLS with this party's credentials, or plain text for a cluster run insecure).
    pub fn new(endpoints: Vec<String>, policy: RetryPolicy, transport: Transport) -> Self {
        Self {
            nodes: Arc::new(Nodes {
                endpoints,
                channels: Channels::new(transport),
                leader: Mutex::new(None),
            }),
            policy,
            batcher: None,
        }
    }

    /// Coalesces concurrent writes into `WriteBatch` calls (see [`WriteBatching`]). Starts a
    /// task: call it inside a tokio runtime.
    pub fn with_write_batching(mut self, cfg: WriteBatching) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(cfg.queue.max(1));
        let stats = Arc::new(BatchStats::default());
        let shared = BatchShared {
            nodes: self.nodes.clone(),
            attempt_timeout: self.policy.attempt_timeout,
            stats: stats.clone(),
        };
        tokio::spawn(run_batcher(shared, rx, cfg));
        self.batcher = Some(Batcher { tx, stats });
        self
    }

    /// Counts of the batch path, when batching is on.
    pub fn batch_stats(&self) -> Option<Arc<BatchStats>> {
        self.batcher.as_ref().map(|b| b.stats.clone())
    }

    /// The nodes this client knows.
    pub fn endpoints(&self) -> &[String] {
        &self.nodes.endpoints
    }

    fn remember_leader(&self, addr: Option<String>) {
        self.nodes.remember_leader(addr);
    }

    fn channel(&self, addr: &str) -> Result<tonic::transport::Channel, ClientError> {
        self.nodes.channel(addr)
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.policy.attempt_timeout);
        r
    }

    /// Runs `call` against the leader (or a guess), following hints and moving on to other
    /// nodes, within the policy's bounds. An unknown outcome anywhere makes the final error
    /// unknown unless a later attempt gives the answer.
    async fn run(&self, call: Call<'_>) -> Result<Answer, ClientError> {
        self.run_after(call, false).await
    }

    /// `run`, after an earlier attempt whose outcome was `unknown` or not.
    async fn run_after(&self, call: Call<'_>, unknown_before: bool) -> Result<Answer, ClientError> {
        let started = Instant::now();
        let mut next_guess = 0usize;
        let mut target = self.nodes.leader();
        let mut last_err = ClientError::Unreachable("no attempt made".into());
        let mut unknown = unknown_before;
        let mut pause = self.policy.backoff;
        for _ in 0..self.policy.attempts_max {
            if started.elapsed() >= self.policy.total_deadline {
                break;
            }
            let addr = match target.take() {
                Some(a) => a,
                None => {
                    let endpoints = &self.nodes.endpoints;
                    let a = endpoints[next_guess % endpoints.len()].clone();
                    next_guess += 1;
                    a
                }
            };
            match self.attempt(&call, &addr).await {
                Attempt::Done(v) => {
                    self.remember_leader(Some(addr));
                    return Ok(v);
                }
                Attempt::Redirect(to) => {
                    target = Some(to);
                }
                Attempt::Next(e) => {
                    self.remember_leader(None);
                    // A refusal is final: no other node of the cluster decides otherwise. (An
                    // earlier attempt's unknown outcome is not lost by it: a write refused here
                    // was refused everywhere, so no attempt can have been applied.)
                    if matches!(
                        e,
                        ClientError::Rejected(_) | ClientError::Server(_) | ClientError::Denied(_)
                    ) {
                        return Err(e);
                    }
                    unknown |= matches!(e, ClientError::Unknown(_));
                    last_err = e;
                    let left = self.policy.total_deadline.saturating_sub(started.elapsed());
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(self.policy.backoff * 8);
                }
            }
        }
        if unknown && !matches!(last_err, ClientError::Unknown(_)) {
            return Err(ClientError::Unknown(format!(
                "an attempt may have been applied; last error: {last_err}"
            )));
        }
        Err(last_err)
    }

    async fn attempt(&self, call: &Call<'_>, addr: &str) -> Attempt<Answer> {
        let channel = match self.channel(addr) {
            Ok(c) => c,
            Err(e) => return Attempt::Next(e),
        };
        match call {
            Call::Write {
                client_id,
                idempotency_key,
                command_json,
            } => {
                let req = self.request(pb::WriteRequest {
                    client_id: client_id.to_string(),
                    idempotency_key: idempotency_key.to_string(),
                    command_json: command_json.to_vec(),
                    forwarded: false,
                    format: crate::version::RPC_FORMAT,
                });
                match pb::client_client::ClientClient::new(channel)
                    .write(req)
                    .await
                {
                    Ok(r) => match decode_write_reply(r.into_inner(), addr) {
                        Attempt::Done(w) => Attempt::Done(Answer::Write(w)),
                        Attempt::Redirect(to) => Attempt::Redirect(to),
                        Attempt::Next(e) => Attempt::Next(e),
                    },
                    Err(s) => Attempt::Next(classify(&s, true)),
                }
            }
            Call::Read { query, consistency } => {
                match self.read_at(addr, query, *consistency).await {
                    Ok(Some(r)) => Attempt::Done(Answer::Read(r)),
                    Ok(None) => {
                        Attempt::Next(ClientError::Unreachable(format!("{addr}: no leader known")))
                    }
                    Err(e) => Attempt::Next(e),
                }
            }
            Call::Admin(op) => {
                let mut c = pb::admin_client::AdminClient::new(channel);
                let res = match op {
                    AdminOp::AddLearner { id, addr } => {
                        let member = Some(pb::Member {
                            id: *id,
                            addr: addr.clone(),
                        });
                        c.add_learner(long(pb::AddLearnerRequest { member })).await
                    }
                    AdminOp::Promote(id) => c.promote(long(pb::PromoteRequest { id: *id })).await,
                    AdminOp::Remove(id) => c.remove(long(pb::RemoveRequest { id: *id })).await,
                    AdminOp::TransferLeader(to) => {
                        c.transfer_leader(long(pb::TransferLeaderRequest { to: *to }))
                            .await
                    }
                    AdminOp::Reconcile => c.reconcile(long(pb::Empty {})).await,
                };
                match res {
                    Ok(r) => match admin_result(r.into_inner()) {
                        Ok(msg) => Attempt::Done(Answer::Admin(msg)),
                        Err(h) if h.known && h.leader_addr != addr => {
                            Attempt::Redirect(h.leader_addr)
                        }
                        Err(_) => Attempt::Next(ClientError::Unreachable(format!(
                            "{addr}: no leader known"
                        ))),
                    },
                    Err(s) => Attempt::Next(classify(&s, false)),
                }
            }
        }
    }

    /// Writes `command` with an idempotency key; retries reuse the key, so it is applied once.
    pub async fn write(
        &self,
        client_id: &str,
        idempotency_key: &str,
        command: &Command,
    ) -> Result<WriteResult, ClientError> {
        let command_json =
            serde_json::to_vec(command).map_err(|e| ClientError::Rejected(e.to_string()))?;
        let mut unknown = false;
        if let Some(b) = &self.batcher {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let pending = Pending {
                req: pb::WriteRequest {
                    client_id: client_id.to_string(),
                    idempotency_key: idempotency_key.to_string(),
                    command_json: command_json.clone(),
                    forwarded: false,
                    format: crate::version::RPC_FORMAT,
                },
                tx,
                queued: std::time::Instant::now(),
            };
            // A full queue (or a stopped task) sends this write alone.
            if b.tx.try_send(pending).is_ok() {
                match rx.await {
                    Ok(BatchOutcome::Done(w)) => return Ok(w),
                    Ok(BatchOutcome::Final(e)) => return Err(e),
                    Ok(BatchOutcome::Retry { unknown: u }) => unknown = u,
                    // Dropped mid-call: it may have been sent.
                    Err(_) => unknown = true,
                }
            }
        }
        match self
            .run_after(
                Call::Write {
                    client_id,
                    idempotency_key,
                    command_json: &command_json,
                },
                unknown,
            )
            .await?
        {
            Answer::Write(w) => Ok(w),
            _ => Err(ClientError::Server("mismatched answer".into())),
        }
    }

    /// Reads through any node at the given consistency (the leader, when known).
    pub async fn read(
        &self,
        query: &Query,
        consistency: Consistency,
    ) -> Result<ReadResult, ClientError> {
        match self.run(Call::Read { query, consistency }).await? {
            Answer::Read(r) => Ok(r),
            _ => Err(ClientError::Server("mismatched answer".into())),
        }
    }

    /// Reads through one node, without retries. `Ok(None)` when it knows no leader for a
    /// linearizable read.
    pub async fn read_at(
        &self,
        addr: &str,
        query: &Query,
        consistency: Consistency,
    ) -> Result<Option<ReadResult>, ClientError> {
        let query_json =
            serde_json::to_vec(query).map_err(|e| ClientError::Rejected(e.to_string()))?;
        let consistency = match consistency {
            Consistency::Linearizable => pb::Consistency::Linearizable,
            Consistency::Local => pb::Consistency::Local,
        };
        let req = self.request(pb::ReadRequest {
            query_json,
            consistency: consistency as i32,
            format: crate::version::RPC_FORMAT,
        });
        let r = pb::client_client::ClientClient::new(self.channel(addr)?)
            .read(req)
            .await
            .map_err(|s| classify(&s, false))?
            .into_inner();
        crate::version::check_rpc_format("a read reply", r.format)
            .map_err(|s| ClientError::Server(format!("{addr}: {}", s.message())))?;
        match r.result {
            Some(pb::read_reply::Result::ResultJson(j)) => {
                let result = serde_json::from_slice(&j)
                    .map_err(|e| ClientError::Server(format!("bad reply: {e}")))?;
                Ok(Some(ReadResult {
                    result,
                    applied_index: r.applied_index,
                }))
            }
            _ => Ok(None),
        }
    }

    /// The status of one node.
    pub async fn status(&self, addr: &str) -> Result<pb::StatusReply, ClientError> {
        let mut c = pb::admin_client::AdminClient::new(self.channel(addr)?);
        Ok(c.status(self.request(pb::Empty {}))
            .await
            .map_err(|s| classify(&s, false))?
            .into_inner())
    }

    /// Initializes a new cluster through the node at `addr`.
    pub async fn init(&self, addr: &str, members: Vec<pb::Member>) -> Result<String, ClientError> {
        let mut c = pb::admin_client::AdminClient::new(self.channel(addr)?);
        let r = c
            .init(self.request(pb::InitRequest { members }))
            .await
            .map_err(|s| classify(&s, false))?;
        let done = admin_result(r.into_inner())
            .map_err(|h| ClientError::Rejected(format!("not initialized: leader hint {h:?}")))?;
        Ok(format!("{done}; {}", self.raise_new_cluster().await))
    }

    /// A new cluster starts at the version its members support: once a leader is elected
    /// (within [`INIT_RAISE_DEADLINE`]), the leader's binary version, when every member runs
    /// it. What happened, in words (the cluster works at version 1 if the raise did not
    /// happen, and `ticketctl cluster version --raise` can do it later).
    async fn raise_new_cluster(&self) -> String {
        let deadline = tokio::time::Instant::now() + INIT_RAISE_DEADLINE;
        loop {
            match self.cluster_version(true, 0).await {
                Ok(s) if s.message.is_empty() => {
                    return format!("cluster version {}", s.cluster_version)
                }
                Ok(s) => return s.message,
                // A member too slow to say its version (a loaded machine) is asked again.
                Err(ClientError::Rejected(why))
                    if !why.contains("did not answer")
                        || tokio::time::Instant::now() >= deadline =>
                {
                    return format!("cluster version not raised: {why}")
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return format!("cluster version not raised (no leader in time): {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Triggers a snapshot on the node at `addr` and waits until it is built.
    pub async fn trigger_snapshot(&self, addr: &str) -> Result<String, ClientError> {
        let mut c = pb::admin_client::AdminClient::new(self.channel(addr)?);
        let r = c
            .trigger_snapshot(long(pb::Empty {}))
            .await
            .map_err(|s| classify(&s, false))?;
        admin_result(r.into_inner())
            .map_err(|h| ClientError::Rejected(format!("leader hint {h:?}")))
    }

    /// Proposes a digest entry on the leader (found from any endpoint, following its hint
    /// once): every replica digests its state as of that entry, whose index this returns.
    pub async fn propose_digest(&self) -> Result<u64, ClientError> {
        let mut last = ClientError::Unreachable("no endpoint answered".into());
        for ep in self.endpoints() {
            let mut addr = ep.to_string();
            for _ in 0..2 {
                let mut c = pb::admin_client::AdminClient::new(self.channel(&addr)?);
                match c.propose_digest(self.request(pb::Empty {})).await {
                    Ok(r) => match r.into_inner().result {
                        Some(pb::digest_reply::Result::Status(s)) => return Ok(s.index),
                        Some(pb::digest_reply::Result::NotLeader(h)) if h.known => {
                            addr = h.leader_addr;
                        }
                        _ => {
                            last = ClientError::Unreachable(format!("{addr} knows no leader"));
                            break;
                        }
                    },
                    Err(s) => {
                        last = classify(&s, false);
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// The cluster version and every node's binary version, as the leader (found from any
    /// endpoint, following its hint once) asks them now; with `raise`, the leader raises the
    /// cluster version to `to` (0: its own binary version) if every node supports it.
    pub async fn cluster_version(
        &self,
        raise: bool,
        to: u32,
    ) -> Result<pb::ClusterVersionStatus, ClientError> {
        let mut last = ClientError::Unreachable("no endpoint answered".into());
        for ep in self.endpoints() {
            let mut addr = ep.to_string();
            for _ in 0..2 {
                let mut c = pb::admin_client::AdminClient::new(self.channel(&addr)?);
                let req = self.request(pb::ClusterVersionRequest { raise, to });
                match c.cluster_version(req).await {
                    Ok(r) => match r.into_inner().result {
                        Some(pb::cluster_version_reply::Result::Status(s)) => return Ok(s),
                        Some(pb::cluster_version_reply::Result::NotLeader(h)) if h.known => {
                            addr = h.leader_addr;
                        }
                        _ => {
                            last = ClientError::Unreachable(format!("{addr} knows no leader"));
                            break;
                        }
                    },
                    Err(s) => {
                        let e = classify(&s, raise);
                        if matches!(e, ClientError::Rejected(_) | ClientError::Unknown(_)) {
                            return Err(e);
                        }
                        last = e;
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// The digest status of the node at `addr` for the digest entry at `index`.
    pub async fn digest(&self, addr: &str, index: u64) -> Result<pb::DigestStatus, ClientError> {
        let mut c = pb::admin_client::AdminClient::new(self.channel(addr)?);
        let r = c
            .digest(self.request(pb::DigestRequest { index }))
            .await
            .map_err(|s| classify(&s, false))?;
        match r.into_inner().result {
            Some(pb::digest_reply::Result::Status(s)) => Ok(s),
            _ => Err(ClientError::Server("a digest reply without status".into())),
        }
    }

    /// `ticketctl endpoint hashkv`: proposes a digest entry and asks every endpoint for its
    /// digest of it, waiting up to `wait` for those still computing (or not yet applied).
    /// An endpoint that will never digest the entry (it installed a snapshot past it, or
    /// applied it with [`crate::digest::DIGESTS_IN_FLIGHT_MAX`] digests running) makes a new
    /// entry be proposed, at most [`HASHKV_ROUNDS`] in all. The last entry's index and each
    /// endpoint's answer, in endpoint order.
    pub async fn hashkv(
        &self,
        wait: Duration,
    ) -> Result<(u64, Vec<(String, Result<pb::DigestStatus, ClientError>)>), ClientError> {
        let mut round = 1;
        loop {
            let index = self.propose_digest().await?;
            let (answers, skipped) = self.digests_at(index, wait).await;
            if !skipped || round >= HASHKV_ROUNDS {
                return Ok((index, answers));
            }
            round += 1;
        }
    }

    /// Every endpoint's digest of the entry at `index`, waiting up to `wait` in all; and
    /// whether some endpoint passed the entry without digesting it.
    pub async fn digests_at(
        &self,
        index: u64,
        wait: Duration,
    ) -> (Vec<(String, Result<pb::DigestStatus, ClientError>)>, bool) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut answers = Vec::with_capacity(self.endpoints().len());
        let mut skipped = false;
        for ep in self.endpoints() {
            let answer = loop {
                let mut a = self.digest(ep, index).await;
                if is_state(&a, pb::DigestState::DigestUnknown) && self.passed(ep, index).await {
                    // Unknown once applied (or installed) past the entry is for good; asked
                    // again in case the entry was applied between the two calls.
                    a = self.digest(ep, index).await;
                    if is_state(&a, pb::DigestState::DigestUnknown) {
                        skipped = true;
                        break a;
                    }
                }
                let settled = is_state(&a, pb::DigestState::DigestComputed);
                if settled || tokio::time::Instant::now() >= deadline {
                    break a;
                }
                // Not yet applied there, still computing, or unreachable: bounded.
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            answers.push((ep.to_string(), answer));
        }
        (answers, skipped)
    }

    /// Whether the node at `addr` applied, or installed a snapshot, at or past `index`.
    async fn passed(&self, addr: &str, index: u64) -> bool {
        self.status(addr)
            .await
            .is_ok_and(|st| st.applied_index >= index || st.snapshot_index >= index)
    }

    /// Runs an admin call on the leader, following hints.
    pub async fn admin_on_leader(&self, op: AdminOp) -> Result<String, ClientError> {
        match self.run(Call::Admin(&op)).await? {
            Answer::Admin(m) => Ok(m),
            _ => Err(ClientError::Server("mismatched answer".into())),
        }
    }
}

enum Call<'a> {
    Write {
        client_id: &'a str,
        idempotency_key: &'a str,
        command_json: &'a [u8],
    },
    Read {
        query: &'a Query,
        consistency: Consistency,
    },
    Admin(&'a AdminOp),
}

enum Answer {
    Write(WriteResult),
    Read(ReadResult),
    Admin(String),
}

/// An admin operation that must run on the leader.
#[derive(Debug, Clone)]
pub enum AdminOp {
    /// Add a non-voting member that receives the log.
    AddLearner {
        /// Its id.
        id: u64,
        /// Its gRPC address.
        addr: String,
    },
    /// Make a learner a voter.
    Promote(u64),
    /// Remove a member.
    Remove(u64),
    /// Hand leadership to a voter.
    TransferLeader(u64),
    /// Run the leader's payment reconciler and notification dispatcher once.
    Reconcile,
}

/// A request with the long deadline of membership changes (a learner may need a snapshot).
fn long<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.set_timeout(Duration::from_secs(90));
    r
}

fn admin_result(r: pb::AdminReply) -> Result<String, pb::LeaderHint> {
    match r.result {
        Some(pb::admin_reply::Result::Ok(m)) => Ok(m),
        Some(pb::admin_reply::Result::NotLeader(h)) => Err(h),
        None => Err(pb::LeaderHint::default()),
    }
}
