//! The gRPC services of a node: Raft (between nodes), Client (writes and reads), Admin.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ForwardToLeader, RaftError};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use openraft::vote::RaftLeaderId;
use openraft::{ChangeMembers, ReadPolicy, ServerState};
use tonic::{Request, Response, Status, Streaming};

use crate::authz::{Caller, Gate};
use crate::channels::Channels;
use crate::codec::{decode, encode};
use crate::pb;
use crate::proposer::ProposeError;
use crate::snapshot::SnapshotFile;
use crate::state_machine::StateMachine;
use crate::{NodeAddr, NodeId, Raft, TypeConfig};

/// Largest snapshot a node accepts from a peer unless configured otherwise.
pub const SNAPSHOT_RECV_MAX_BYTES: u64 = 64 << 30;
/// Free disk a received snapshot needs, as a multiple of its size: the file, and about as much
/// again while it is installed into RocksDB.
pub const SNAPSHOT_DISK_FACTOR: u64 = 2;
/// Free disk left over after that, at least.
pub const SNAPSHOT_DISK_HEADROOM_BYTES: u64 = 64 << 20;
/// Longest a server waits for a write to commit or a read to become linearizable, whatever the
/// client's own deadline.
pub const SERVER_OP_DEADLINE: Duration = Duration::from_secs(10);

/// What every service of a node needs.
#[derive(Clone)]
pub struct NodeCtx {
    /// This node's id.
    pub id: NodeId,
    /// This node's advertised gRPC address.
    pub addr: String,
    /// The Raft instance.
    pub raft: Raft,
    /// Where client writes are queued and batched into entries.
    pub proposer: crate::proposer::Proposer,
    /// The state machine.
    pub sm: StateMachine,
    /// Channels to peers, shared with the Raft network.
    pub channels: Channels,
    /// The node's database, for status figures.
    pub db: Arc<rocksdb::DB>,
    /// Where the node serves Prometheus `/metrics`, if it does.
    pub metrics_addr: String,
    /// What `Admin.Reconcile` runs on the leader, once the node's background worker set it.
    pub reconcile: Arc<std::sync::OnceLock<ReconcileHook>>,
    /// Who may call what (see `authz`); the Raft service checks senders with it.
    pub gate: Arc<Gate>,
    /// Largest snapshot this node accepts from a peer, bytes.
    pub snapshot_recv_max_bytes: u64,
}

/// The reconciler's entry point as the admin service calls it: the report as JSON, or why not.
pub type ReconcileHook = Arc<
    dyn Fn() -> Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

/// The client id of the writes the admin service proposes itself.
pub const ADMIN_CLIENT_ID: &str = "ticketd-admin";

/// This node's digest status of `index`.
fn digest_reply(ctx: &NodeCtx, index: u64) -> pb::DigestReply {
    let digests = ctx.sm.digests();
    let (state, digest) = match digests.status(index) {
        crate::digest::DigestStatus::Unknown => (pb::DigestState::DigestUnknown, String::new()),
        crate::digest::DigestStatus::Pending => (pb::DigestState::DigestPending, String::new()),
        crate::digest::DigestStatus::Computed(d) => (pb::DigestState::DigestComputed, d),
    };
    pb::DigestReply {
        result: Some(pb::digest_reply::Result::Status(pb::DigestStatus {
            node_id: ctx.id,
            index,
            state: state as i32,
            digest,
            diverged_at: digests.diverged_at().unwrap_or(0),
        })),
    }
}

/// Longest an on-demand reconcile may run.
pub const RECONCILE_DEADLINE: Duration = Duration::from_secs(120);

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn bad_request(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

fn blob<T: serde::Serialize>(v: &T) -> Result<Response<pb::Blob>, Status> {
    Ok(Response::new(pb::Blob {
        payload: encode(v).map_err(internal)?,
        format: crate::version::RPC_FORMAT,
    }))
}

/// Decodes `what`, a peer's message in `payload` of `format`. One of a version past this
/// binary's stops the node ([`crate::version::halt`]): its leader writes what it cannot read.
fn decode_peer<T: serde::de::DeserializeOwned>(
    what: &str,
    format: u32,
    payload: &[u8],
) -> Result<T, Status> {
    let refused = match crate::version::check_rpc_format(what, format) {
        Err(s) => s,
        Ok(()) => match decode(payload) {
            Ok(v) => return Ok(v),
            Err(e) => Status::invalid_argument(format!("{what}: {e}")),
        },
    };
    if crate::version::is_too_new(refused.message()) {
        crate::version::halt(format!("a peer sent {}", refused.message()));
        return Err(Status::failed_precondition(refused.message().to_string()));
    }
    Err(refused)
}

/// Fault injection for clock tests: `TICKETD_FAULT_CLOCK_OFFSET_MS` moves this node's clock (the
/// time it stamps on the entries it proposes as leader) by that many ms. Read once; absent or
/// unparsable is 0. The store keeps log time monotonic, so a leader whose clock jumps ahead
/// moves log time forward for everyone: holds lapse early, as they would on a real skewed host.
fn clock_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let v = std::env::var("TICKETD_FAULT_CLOCK_OFFSET_MS").ok();
        let off = v
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        if off != 0 {
            tracing::warn!(
                offset_ms = off,
                "fault injection: this node's clock is offset"
            );
        }
        off
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        .saturating_add(clock_offset_ms())
}

fn hint(f: &ForwardToLeader<TypeConfig>) -> pb::LeaderHint {
    pb::LeaderHint {
        leader_id: f.leader_id.unwrap_or(0),
        leader_addr: f
            .leader_node
            .as_ref()
            .map(|n| n.addr.clone())
            .unwrap_or_default(),
        known: f.leader_id.is_some() && f.leader_node.is_some(),
    }
}

impl NodeCtx {
    /// The leader as this node knows it: id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        // Borrowed, not cloned: every write asks, and the metrics hold maps.
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    fn leader_hint(&self) -> pb::LeaderHint {
        match self.leader() {
            Some((id, addr)) => pb::LeaderHint {
                leader_id: id,
                leader_addr: addr,
                known: true,
            },
            None => pb::LeaderHint::default(),
        }
    }
}

/// The Raft service: what peers call.
pub struct RaftService(pub NodeCtx);

type BlobStream = Pin<Box<dyn Stream<Item = Result<pb::Blob, Status>> + Send>>;

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn vote(&self, req: Request<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        let b = req.get_ref();
        let rpc: VoteRequest<TypeConfig> = decode_peer("a vote request", b.format, &b.payload)?;
        self.0
            .gate
            .check_sender(&req, "Vote", *rpc.vote.leader_id().node_id())?;
        blob(&self.0.raft.vote(rpc).await.map_err(internal)?)
    }

    async fn pre_vote(&self, req: Request<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        let b = req.get_ref();
        let rpc: VoteRequest<TypeConfig> = decode_peer("a pre-vote request", b.format, &b.payload)?;
        self.0
            .gate
            .check_sender(&req, "PreVote", *rpc.vote.leader_id().node_id())?;
        blob(&self.0.raft.pre_vote(rpc).await.map_err(internal)?)
    }

    async fn append_entries(&self, req: Request<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        let b = req.get_ref();
        let rpc: AppendEntriesRequest<TypeConfig> =
            decode_peer("an append request", b.format, &b.payload)?;
        self.0
            .gate
            .check_sender(&req, "AppendEntries", *rpc.vote.leader_id().node_id())?;
        blob(&self.0.raft.append_entries(rpc).await.map_err(internal)?)
    }

    type StreamAppendStream = BlobStream;

    async fn stream_append(
        &self,
        req: Request<Streaming<pb::Blob>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        // A request that fails to decode ends the input; openraft then restarts the pipeline.
        // So does one in the name of another node than the caller's (refused, counted, logged).
        let caller = Caller::of(&req).and_then(|c| c.node_id());
        let gate = self.0.gate.clone();
        let input = req
            .into_inner()
            .take_while(|r| futures::future::ready(r.is_ok()))
            .map(|r| {
                r.ok().and_then(|b| {
                    decode_peer::<AppendEntriesRequest<TypeConfig>>(
                        "an append request",
                        b.format,
                        &b.payload,
                    )
                    .ok()
                })
            })
            .take_while(move |r| {
                let from_caller = match (r, caller) {
                    (Some(rpc), Some(id)) => {
                        let sender = *rpc.vote.leader_id().node_id();
                        sender == id || {
                            let msg =
                                format!("node {id} sent appends in the name of node {sender}");
                            let _ = gate.refuse(
                                "StreamAppend",
                                crate::authz::Refusal::SenderMismatch,
                                msg,
                            );
                            false
                        }
                    }
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                futures::future::ready(from_caller)
            })
            .filter_map(futures::future::ready);
        let output = self.0.raft.stream_append(Box::pin(input)).map(|r| match r {
            Ok(result) => encode(&result)
                .map(|payload| pb::Blob {
                    payload,
                    format: crate::version::RPC_FORMAT,
                })
                .map_err(internal),
            Err(fatal) => Err(internal(fatal)),
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn snapshot(
        &self,
        req: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::Blob>, Status> {
        let caller = Caller::of(&req).cloned();
        let mut input = req.into_inner();
        let first = input
            .next()
            .await
            .ok_or_else(|| bad_request("empty snapshot stream"))??;
        let Some(pb::snapshot_chunk::Item::Meta(meta)) = first.item else {
            return Err(bad_request("first snapshot chunk must carry the meta"));
        };
        let (vote, meta): (VoteOf<TypeConfig>, SnapshotMetaOf<TypeConfig>) =
            decode_peer("a snapshot's meta", first.format, &meta)?;
        if let Some(id) = caller.as_ref().and_then(|c| c.node_id()) {
            let sender = *vote.leader_id().node_id();
            if sender != id {
                return Err(self.0.gate.refuse(
                    "Snapshot",
                    crate::authz::Refusal::SenderMismatch,
                    format!("node {id} sent a snapshot in the name of node {sender}"),
                ));
            }
        }
        let size = first.size_bytes.ok_or_else(|| {
            Status::failed_precondition(
                "the sender did not declare the snapshot's size (size_bytes); refused before \
                 writing anything",
            )
        })?;
        let path = self.0.sm.partial_path("recv");
        let free = free_disk_bytes(&path);
        snapshot_fits(size, self.0.snapshot_recv_max_bytes, free).map_err(|e| {
            metrics::counter!("ticketd_snapshots_refused_total").increment(1);
            tracing::warn!(
                size,
                cap = self.0.snapshot_recv_max_bytes,
                ?free,
                "incoming snapshot refused: {e}"
            );
            Status::resource_exhausted(e)
        })?;
        let result = self
            .receive_and_install(&mut input, &path, size, vote, meta)
            .await;
        // Whatever happened, no partial file stays behind (an installed one was renamed).
        let _ = std::fs::remove_file(&path);
        result
    }

    async fn transfer_leader(&self, req: Request<pb::Blob>) -> Result<Response<pb::Blob>, Status> {
        let b = req.get_ref();
        let rpc: TransferLeaderRequest<TypeConfig> =
            decode_peer("a leader transfer", b.format, &b.payload)?;
        self.0.gate.check_sender(
            &req,
            "TransferLeader",
            *rpc.from_leader().leader_id().node_id(),
        )?;
        blob(
            &self
                .0
                .raft
                .handle_transfer_leader(rpc)
                .await
                .map_err(internal)?,
        )
    }

    async fn node_version(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::NodeVersionReply>, Status> {
        Ok(Response::new(pb::NodeVersionReply {
            id: self.0.id,
            binary_version: crate::version::BINARY_VERSION,
            cluster_version: self.0.sm.cluster_version().get(),
        }))
    }
}

/// Free bytes for an unprivileged writer on the file system holding `path`'s directory; `None`
/// when it cannot be told.
fn free_disk_bytes(path: &std::path::Path) -> Option<u64> {
    let dir = path.parent()?;
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether a snapshot of `size` bytes may be received: at most `cap`, and the file system has
/// room for it [`SNAPSHOT_DISK_FACTOR`] times over plus [`SNAPSHOT_DISK_HEADROOM_BYTES`]
/// (`free`, when it can be told). Why not, otherwise.
pub fn snapshot_fits(size: u64, cap: u64, free: Option<u64>) -> Result<(), String> {
    if size > cap {
        return Err(format!(
            "the snapshot's declared size {size} bytes passes this node's cap of {cap} bytes \
             (snapshot_recv_max_bytes)"
        ));
    }
    let need = size
        .saturating_mul(SNAPSHOT_DISK_FACTOR)
        .saturating_add(SNAPSHOT_DISK_HEADROOM_BYTES);
    match free {
        Some(free) if free < need => Err(format!(
            "the snapshot's declared size {size} bytes needs {need} bytes free; the disk has {free}"
        )),
        _ => Ok(()),
    }
}

impl RaftService {
    async fn receive_and_install(
        &self,
        input: &mut Streaming<pb::SnapshotChunk>,
        path: &std::path::Path,
        declared: u64,
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
    ) -> Result<Response<pb::Blob>, Status> {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
        let mut received = 0u64;
        while let Some(chunk) = input.next().await {
            let Some(pb::snapshot_chunk::Item::Data(data)) = chunk?.item else {
                return Err(bad_request(
                    "snapshot chunk after the first must carry data",
                ));
            };
            received += data.len() as u64;
            if received > declared {
                return Err(bad_request(format!(
                    "the snapshot stream passes its declared size of {declared} bytes"
                )));
            }
            file.write_all(&data).await.map_err(internal)?;
        }
        if received != declared {
            return Err(bad_request(format!(
                "the snapshot stream ended after {received} of its declared {declared} bytes"
            )));
        }
        file.sync_all().await.map_err(internal)?;
        drop(file);
        metrics::counter!("ticketd_snapshot_received_bytes_total").increment(received);
        let snap = SnapshotOf::<TypeConfig, SnapshotFile> {
            meta,
            snapshot: SnapshotFile {
                path: path.to_path_buf(),
            },
        };
        let resp = self
            .0
            .raft
            .install_full_snapshot(vote, snap)
            .await
            .map_err(internal)?;
        blob(&resp)
    }
}

/// The client service: writes and reads of the ticket domain.
pub struct ClientService(pub NodeCtx);

fn not_leader_write(h: pb::LeaderHint) -> pb::WriteReply {
    pb::WriteReply {
        result: Some(pb::write_reply::Result::NotLeader(h)),
        log_index: 0,
        log_seq: 0,
        format: crate::version::RPC_FORMAT,
    }
}

fn batch_item(r: Result<pb::WriteReply, Status>) -> pb::WriteBatchItem {
    pb::WriteBatchItem {
        result: Some(match r {
            Ok(reply) => pb::write_batch_item::Result::Reply(reply),
            Err(s) => pb::write_batch_item::Result::Error(pb::WriteError {
                code: s.code() as i32,
                message: s.message().to_string(),
            }),
        }),
    }
}

use crate::client::WRITE_BATCH_MAX;

/// On the leader: refuses a command the cluster version does not allow yet, before anything
/// is proposed (`FAILED_PRECONDITION`: the write had no effect). The cluster version only
/// rises, and what the leader proposes now follows every entry it applied, so a command
/// allowed here is allowed when applied (`apply` checks again all the same).
fn version_gate(ctx: &NodeCtx, command: &ticketd_store::Command) -> Result<(), Status> {
    let needs = command.required_version();
    let cluster = ctx.sm.cluster_version().get();
    if needs > cluster {
        metrics::counter!("ticketd_writes_refused_by_version_total").increment(1);
        return Err(Status::failed_precondition(format!(
            "{VERSION_NOT_ACTIVE}: this command needs cluster version {needs}; the cluster is at \
             {cluster} (raise it once every node runs a binary of version {needs}: ticketctl \
             cluster version --raise)"
        )));
    }
    Ok(())
}

/// The words of a write refused by the version gate.
pub const VERSION_NOT_ACTIVE: &str = "version not active";

/// One write, as the `Write` RPC handles it: proposed here when this node leads, forwarded to
/// the leader once when it does not (unless it was forwarded already).
async fn write_one(ctx: &NodeCtx, w: pb::WriteRequest) -> Result<pb::WriteReply, Status> {
    if w.client_id.is_empty() || w.idempotency_key.is_empty() {
        return Err(bad_request("client_id and idempotency_key are required"));
    }
    crate::version::check_rpc_format("a write", w.format)?;
    let command: ticketd_store::Command =
        serde_json::from_slice(&w.command_json).map_err(bad_request)?;
    if matches!(command, ticketd_store::Command::SetClusterVersion { .. }) {
        // A version no binary supports would stop every replica: only the leader's admin
        // service proposes it, after asking every node.
        return Err(Status::permission_denied(
            "the cluster version is raised through Admin.ClusterVersion only \
             (ticketctl cluster version --raise)",
        ));
    }
    match ctx.leader() {
        Some((id, _)) if id == ctx.id => {}
        Some((id, addr)) if !w.forwarded => return forward_write(ctx, id, &addr, w).await,
        _ => return Ok(not_leader_write(ctx.leader_hint())),
    }
    version_gate(ctx, &command)?;
    let request = ticketd_store::Request {
        client_id: w.client_id.clone(),
        idempotency_key: w.idempotency_key.clone(),
        stamped_at_ms: now_ms(),
        command,
    };
    match ctx.proposer.propose(request, w.command_json.len()).await {
        Ok(c) => Ok(pb::WriteReply {
            result: Some(pb::write_reply::Result::ReplyJson(
                serde_json::to_vec(&c.reply).map_err(internal)?,
            )),
            log_index: c.log_index,
            log_seq: c.seq,
            format: crate::version::RPC_FORMAT,
        }),
        Err(ProposeError::NotLeader(f)) => {
            let h = hint(&f);
            if h.known && !w.forwarded {
                forward_write(ctx, h.leader_id, &h.leader_addr.clone(), w).await
            } else {
                Ok(not_leader_write(h))
            }
        }
        Err(ProposeError::Timeout) => Err(Status::deadline_exceeded(
            "write did not commit in time: outcome unknown, retry with the same idempotency key",
        )),
        Err(ProposeError::Discarded) => Err(Status::unavailable(
            "leader changed while the write was in flight: outcome unknown, retry with the same idempotency key",
        )),
        Err(ProposeError::Overloaded) => Err(Status::resource_exhausted(
            "the leader's proposal queue is full: nothing was proposed, retry later",
        )),
        Err(ProposeError::Fatal(e)) => Err(internal(e)),
    }
}

#[tonic::async_trait]
impl pb::client_server::Client for ClientService {
    async fn write(
        &self,
        req: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteReply>, Status> {
        write_one(&self.0, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn write_batch(
        &self,
        req: Request<pb::WriteBatchRequest>,
    ) -> Result<Response<pb::WriteBatchReply>, Status> {
        let b = req.into_inner();
        if b.writes.len() > WRITE_BATCH_MAX {
            return Err(bad_request(format!(
                "{} writes in one batch; at most {WRITE_BATCH_MAX}",
                b.writes.len()
            )));
        }
        let ctx = &self.0;
        match ctx.leader() {
            Some((id, _)) if id == ctx.id => {}
            Some((id, addr)) if !b.forwarded => {
                return forward_write_batch(ctx, id, &addr, b)
                    .await
                    .map(Response::new);
            }
            _ => {
                let h = ctx.leader_hint();
                let items = b
                    .writes
                    .iter()
                    .map(|_| batch_item(Ok(not_leader_write(h.clone()))))
                    .collect();
                return Ok(Response::new(pb::WriteBatchReply { items }));
            }
        }
        metrics::histogram!("ticketd_write_batch_writes").record(b.writes.len() as f64);
        let started = std::time::Instant::now();
        // Every write is queued with the proposer in the same poll, so they share entries.
        let replies = futures::future::join_all(b.writes.into_iter().map(|mut w| {
            w.forwarded = true;
            write_one(ctx, w)
        }))
        .await;
        metrics::histogram!("ticketd_write_batch_seconds").record(started.elapsed().as_secs_f64());
        Ok(Response::new(pb::WriteBatchReply {
            items: replies.into_iter().map(batch_item).collect(),
        }))
    }

    async fn read(&self, req: Request<pb::ReadRequest>) -> Result<Response<pb::ReadReply>, Status> {
        let secrets = Caller::may_see_secrets(&req);
        let r = req.into_inner();
        crate::version::check_rpc_format("a read", r.format)?;
        let query: ticketd_store::Query =
            serde_json::from_slice(&r.query_json).map_err(bad_request)?;
        let ctx = &self.0;
        if r.consistency() == pb::Consistency::Linearizable {
            if let Err(h) = linearize(ctx).await? {
                return Ok(Response::new(pb::ReadReply {
                    result: Some(pb::read_reply::Result::NotLeader(h)),
                    applied_index: ctx.sm.applied_index(),
                    format: crate::version::RPC_FORMAT,
                }));
            }
        }
        let (mut result, applied_index) = ctx.sm.query(&query);
        if !secrets {
            crate::redact::redact(&mut result);
        }
        Ok(Response::new(pb::ReadReply {
            result: Some(pb::read_reply::Result::ResultJson(
                serde_json::to_vec(&result).map_err(internal)?,
            )),
            applied_index,
            format: crate::version::RPC_FORMAT,
        }))
    }

    async fn read_index(
        &self,
        _req: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexReply>, Status> {
        let ctx = &self.0;
        let fut = ctx.raft.get_read_log_id(ReadPolicy::ReadIndex);
        let res = tokio::time::timeout(SERVER_OP_DEADLINE, fut)
            .await
            .map_err(|_| {
                Status::deadline_exceeded("leader could not confirm its leadership in time")
            })?;
        let result = match res {
            Ok((read_log_id, _)) => pb::read_index_reply::Result::ReadLogId(
                encode(read_log_id.log_id()).map_err(internal)?,
            ),
            Err(e) => match e.forward_to_leader() {
                Some(f) => pb::read_index_reply::Result::NotLeader(hint(f)),
                None => return Err(Status::unavailable(e.to_string())),
            },
        };
        Ok(Response::new(pb::ReadIndexReply {
            result: Some(result),
        }))
    }
}

async fn forward_write(
    ctx: &NodeCtx,
    leader_id: NodeId,
    leader_addr: &str,
    mut w: pb::WriteRequest,
) -> Result<pb::WriteReply, Status> {
    w.forwarded = true;
    let channel = ctx
        .channels
        .get_node(leader_addr, leader_id)
        .map_err(internal)?;
    let mut client = pb::client_client::ClientClient::new(channel);
    let mut req = Request::new(w);
    req.set_timeout(SERVER_OP_DEADLINE);
    metrics::counter!("ticketd_writes_forwarded_total").increment(1);
    client.write(req).await.map(Response::into_inner)
}

async fn forward_write_batch(
    ctx: &NodeCtx,
    leader_id: NodeId,
    leader_addr: &str,
    mut b: pb::WriteBatchRequest,
) -> Result<pb::WriteBatchReply, Status> {
    b.forwarded = true;
    let channel = ctx
        .channels
        .get_node(leader_addr, leader_id)
        .map_err(internal)?;
    let mut client = pb::client_client::ClientClient::new(channel);
    metrics::counter!("ticketd_writes_forwarded_total").increment(b.writes.len() as u64);
    let mut req = Request::new(b);
    req.set_timeout(SERVER_OP_DEADLINE);
    client.write_batch(req).await.map(Response::into_inner)
}

/// Makes the local state machine current for a linearizable read: ReadIndex on the leader; on a
/// follower, the read index from the leader, then a wait until it is applied here.
/// `Ok(Err(hint))` when no leader is known.
async fn linearize(ctx: &NodeCtx) -> Result<Result<(), pb::LeaderHint>, Status> {
    let read_index = match ctx.leader() {
        Some((id, _)) if id == ctx.id => {
            let fut = ctx.raft.ensure_linearizable(ReadPolicy::ReadIndex);
            return match tokio::time::timeout(SERVER_OP_DEADLINE, fut).await {
                Err(_) => Err(Status::deadline_exceeded(
                    "leader could not confirm its leadership in time",
                )),
                Ok(Ok(_)) => Ok(Ok(())),
                Ok(Err(e)) => match e.forward_to_leader() {
                    Some(f) => Ok(Err(hint(f))),
                    None => Err(Status::unavailable(e.to_string())),
                },
            };
        }
        Some((leader_id, addr)) => {
            let channel = ctx.channels.get_node(&addr, leader_id).map_err(internal)?;
            let mut client = pb::client_client::ClientClient::new(channel);
            let mut req = Request::new(pb::ReadIndexRequest {});
            req.set_timeout(SERVER_OP_DEADLINE);
            match client.read_index(req).await?.into_inner().result {
                Some(pb::read_index_reply::Result::ReadLogId(b)) => {
                    let log_id: LogIdOf<TypeConfig> = decode(&b).map_err(internal)?;
                    log_id.index
                }
                Some(pb::read_index_reply::Result::NotLeader(h)) => return Ok(Err(h)),
                None => return Err(internal("empty read index reply")),
            }
        }
        None => return Ok(Err(pb::LeaderHint::default())),
    };
    ctx.raft
        .wait(Some(SERVER_OP_DEADLINE))
        .applied_index_at_least(Some(read_index), "linearizable read")
        .await
        .map_err(|e| {
            Status::deadline_exceeded(format!("follower did not catch up to the read index: {e}"))
        })?;
    Ok(Ok(()))
}

/// The admin service: what `ticketctl` calls.
pub struct AdminService(pub NodeCtx);

fn admin_ok(msg: impl Into<String>) -> Result<Response<pb::AdminReply>, Status> {
    Ok(Response::new(pb::AdminReply {
        result: Some(pb::admin_reply::Result::Ok(msg.into())),
    }))
}

fn admin_err<E>(e: RaftError<TypeConfig, E>) -> Result<Response<pb::AdminReply>, Status>
where
    E: std::error::Error + openraft::TryAsRef<ForwardToLeader<TypeConfig>> + 'static,
{
    if let Some(f) = e.forward_to_leader() {
        return Ok(Response::new(pb::AdminReply {
            result: Some(pb::admin_reply::Result::NotLeader(hint(f))),
        }));
    }
    match e {
        RaftError::APIError(api) => Err(Status::failed_precondition(api.to_string())),
        RaftError::Fatal(f) => Err(internal(f)),
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn init(
        &self,
        req: Request<pb::InitRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let members: BTreeMap<NodeId, NodeAddr> = req
            .into_inner()
            .members
            .into_iter()
            .map(|m| (m.id, NodeAddr { addr: m.addr }))
            .collect();
        if members.is_empty() {
            return Err(bad_request("init needs at least one member"));
        }
        match self.0.raft.initialize(members.clone()).await {
            Ok(()) => admin_ok(format!("initialized with {} members", members.len())),
            Err(RaftError::APIError(e)) => Err(Status::failed_precondition(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(internal(f)),
        }
    }

    async fn add_learner(
        &self,
        req: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let m = req
            .into_inner()
            .member
            .ok_or_else(|| bad_request("member is required"))?;
        let fut = self
            .0
            .raft
            .add_learner(m.id, NodeAddr { addr: m.addr }, true);
        match tokio::time::timeout(Duration::from_secs(60), fut).await {
            Err(_) => Err(Status::deadline_exceeded(
                "learner did not catch up in time",
            )),
            Ok(Ok(r)) => admin_ok(format!(
                "learner {} added at log index {}",
                m.id, r.log_id.index
            )),
            Ok(Err(e)) => admin_err(e),
        }
    }

    async fn promote(
        &self,
        req: Request<pb::PromoteRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let id = req.into_inner().id;
        let fut = self
            .0
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
        match tokio::time::timeout(SERVER_OP_DEADLINE, fut).await {
            Err(_) => Err(Status::deadline_exceeded(
                "membership change did not commit in time",
            )),
            Ok(Ok(r)) => admin_ok(format!(
                "node {id} promoted to voter at log index {}",
                r.log_id.index
            )),
            Ok(Err(e)) => admin_err(e),
        }
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let id = req.into_inner().id;
        let m = self
            .0
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let is_voter = m.membership().voter_ids().any(|v| v == id);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let fut = self.0.raft.change_membership(change, false);
        match tokio::time::timeout(SERVER_OP_DEADLINE, fut).await {
            Err(_) => Err(Status::deadline_exceeded(
                "membership change did not commit in time",
            )),
            Ok(Ok(r)) => admin_ok(format!("node {id} removed at log index {}", r.log_id.index)),
            Ok(Err(e)) => admin_err(e),
        }
    }

    async fn transfer_leader(
        &self,
        req: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let to = req.into_inner().to;
        let ctx = &self.0;
        match ctx.leader() {
            Some((id, _)) if id == ctx.id => {}
            _ => {
                return Ok(Response::new(pb::AdminReply {
                    result: Some(pb::admin_reply::Result::NotLeader(ctx.leader_hint())),
                }))
            }
        }
        if !ctx.raft.voter_ids().any(|v| v == to) {
            return Err(Status::failed_precondition(format!(
                "node {to} is not a voter"
            )));
        }
        ctx.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(internal)?;
        ctx.raft
            .wait(Some(SERVER_OP_DEADLINE))
            .metrics(|m| m.current_leader == Some(to), "leader transferred")
            .await
            .map_err(|e| {
                Status::deadline_exceeded(format!("leadership did not move in time: {e}"))
            })?;
        admin_ok(format!("leadership transferred to node {to}"))
    }

    async fn trigger_snapshot(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let ctx = &self.0;
        let target = ctx.sm.applied_index();
        ctx.raft.trigger().snapshot().await.map_err(internal)?;
        let m = ctx
            .raft
            .wait(Some(Duration::from_secs(60)))
            .metrics(
                |m| m.snapshot.as_ref().map(|s| s.index).unwrap_or(0) >= target,
                "snapshot built",
            )
            .await
            .map_err(|e| Status::deadline_exceeded(format!("snapshot not built in time: {e}")))?;
        admin_ok(format!(
            "snapshot at log index {}",
            m.snapshot.map(|s| s.index).unwrap_or(0)
        ))
    }

    async fn reconcile(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        let ctx = &self.0;
        match ctx.leader() {
            Some((id, _)) if id == ctx.id => {}
            _ => {
                return Ok(Response::new(pb::AdminReply {
                    result: Some(pb::admin_reply::Result::NotLeader(ctx.leader_hint())),
                }))
            }
        }
        let hook = ctx.reconcile.get().cloned().ok_or_else(|| {
            Status::failed_precondition("this node runs no background worker (no --payments)")
        })?;
        match tokio::time::timeout(RECONCILE_DEADLINE, hook()).await {
            Err(_) => Err(Status::deadline_exceeded(
                "reconcile did not finish in time",
            )),
            Ok(Ok(report)) => admin_ok(report),
            Ok(Err(e)) => Err(Status::failed_precondition(e)),
        }
    }

    async fn propose_digest(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::DigestReply>, Status> {
        let ctx = &self.0;
        if ctx.leader().is_none_or(|(id, _)| id != ctx.id) {
            return Ok(Response::new(pb::DigestReply {
                result: Some(pb::digest_reply::Result::NotLeader(ctx.leader_hint())),
            }));
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = ticketd_store::Request {
            client_id: ADMIN_CLIENT_ID.into(),
            idempotency_key: format!("digest:{}:{}:{n}", ctx.id, now_ms()),
            stamped_at_ms: now_ms(),
            command: ticketd_store::Command::DigestState {},
        };
        let committed = ctx
            .proposer
            .propose(request, 64)
            .await
            .map_err(|e| match e {
                ProposeError::NotLeader(_) | ProposeError::Discarded => {
                    Status::unavailable("leadership changed: propose the digest again")
                }
                ProposeError::Timeout => {
                    Status::deadline_exceeded("the digest entry did not commit in time")
                }
                ProposeError::Overloaded => {
                    Status::resource_exhausted("the leader's proposal queue is full")
                }
                ProposeError::Fatal(e) => internal(e),
            })?;
        Ok(Response::new(digest_reply(ctx, committed.log_index)))
    }

    async fn digest(
        &self,
        req: Request<pb::DigestRequest>,
    ) -> Result<Response<pb::DigestReply>, Status> {
        Ok(Response::new(digest_reply(&self.0, req.into_inner().index)))
    }

    async fn status(&self, _req: Request<pb::Empty>) -> Result<Response<pb::StatusReply>, Status> {
        let ctx = &self.0;
        let m = ctx.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| pb::MemberStatus {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        let db_size_bytes = [
            "rocksdb.total-sst-files-size",
            "rocksdb.size-all-mem-tables",
        ]
        .iter()
        .filter_map(|p| ctx.db.property_int_value(*p).ok().flatten())
        .sum();
        let mut errors = Vec::new();
        if let Err(e) = &m.running_state {
            errors.push(e.to_string());
        }
        if let Some(why) = crate::version::halted() {
            errors.push(format!("stopping: {why}"));
        }
        if let Some(i) = ctx.sm.digests().diverged_at() {
            errors.push(format!(
                "this replica's state differed from the leader's at index {i}"
            ));
        }
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        Ok(Response::new(pb::StatusReply {
            id: ctx.id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            db_size_bytes,
            is_leader: m.state == ServerState::Leader,
            is_learner: !voters.contains(&ctx.id),
            raft_term: m.current_term,
            raft_index: m.last_log_index.unwrap_or(0),
            committed_index: m.cluster_committed.as_ref().map(|l| l.index).unwrap_or(0),
            applied_index: m.last_applied.as_ref().map(|l| l.index).unwrap_or(0),
            leader_id: m.current_leader.unwrap_or(0),
            has_leader: m.current_leader.is_some(),
            state: state.to_string(),
            members,
            snapshot_index: m.snapshot.as_ref().map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.as_ref().map(|l| l.index).unwrap_or(0),
            errors,
            addr: ctx.addr.clone(),
            metrics_addr: ctx.metrics_addr.clone(),
            binary_version: crate::version::BINARY_VERSION,
            cluster_version: ctx.sm.cluster_version().get(),
        }))
    }

    async fn cluster_version(
        &self,
        req: Request<pb::ClusterVersionRequest>,
    ) -> Result<Response<pb::ClusterVersionReply>, Status> {
        let ctx = &self.0;
        if ctx.leader().is_none_or(|(id, _)| id != ctx.id) {
            return Ok(Response::new(pb::ClusterVersionReply {
                result: Some(pb::cluster_version_reply::Result::NotLeader(
                    ctx.leader_hint(),
                )),
            }));
        }
        let req = req.into_inner();
        let mut status = cluster_version_status(ctx).await;
        if req.raise {
            status.message = raise_cluster_version(ctx, &status, req.to).await?;
            status.cluster_version = ctx.sm.cluster_version().get();
        }
        Ok(Response::new(pb::ClusterVersionReply {
            result: Some(pb::cluster_version_reply::Result::Status(status)),
        }))
    }
}

/// How long the leader waits for a node's binary version.
const NODE_VERSION_DEADLINE: Duration = Duration::from_secs(2);

/// The cluster version and every member's and learner's binary version, asked now (the
/// leader answers for itself).
async fn cluster_version_status(ctx: &NodeCtx) -> pb::ClusterVersionStatus {
    let membership = ctx
        .raft
        .metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .clone();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let asks = membership.nodes().map(|(id, n)| {
        let (id, addr, voter) = (*id, n.addr.clone(), voters.contains(id));
        async move {
            let answer = if id == ctx.id {
                Ok(crate::version::BINARY_VERSION)
            } else {
                node_binary_version(ctx, id, &addr).await
            };
            let (binary_version, error) = match answer {
                Ok(v) => (v, String::new()),
                Err(e) => (0, e),
            };
            pb::NodeVersion {
                id,
                addr,
                voter,
                binary_version,
                error,
            }
        }
    });
    let nodes: Vec<pb::NodeVersion> = futures::future::join_all(asks).await;
    let supported = nodes.iter().map(|n| n.binary_version).min().unwrap_or(0);
    pb::ClusterVersionStatus {
        cluster_version: ctx.sm.cluster_version().get(),
        nodes,
        supported,
        message: String::new(),
    }
}

/// Node `id`'s binary version, asked over the Raft service (a binary that predates versions
/// does not serve the call: it supports version 1 only).
async fn node_binary_version(ctx: &NodeCtx, id: NodeId, addr: &str) -> Result<u32, String> {
    let channel = ctx.channels.get_node(addr, id).map_err(|e| e.to_string())?;
    let mut client = pb::raft_client::RaftClient::new(channel);
    let mut req = Request::new(pb::Empty {});
    req.set_timeout(NODE_VERSION_DEADLINE);
    match tokio::time::timeout(NODE_VERSION_DEADLINE, client.node_version(req)).await {
        Err(_) => Err("no answer in time".into()),
        Ok(Ok(r)) => Ok(r.into_inner().binary_version.max(crate::version::LEGACY)),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(crate::version::LEGACY),
        Ok(Err(s)) => Err(format!("{}: {}", s.code(), s.message())),
    }
}

/// Raises the cluster version to `to` (0: the leader's binary version) when every member
/// and learner answered with a binary that supports it; what happened, or why not
/// (`FAILED_PRECONDITION`, nothing proposed).
async fn raise_cluster_version(
    ctx: &NodeCtx,
    status: &pb::ClusterVersionStatus,
    to: u32,
) -> Result<String, Status> {
    let target = if to == 0 {
        crate::version::BINARY_VERSION
    } else {
        to
    };
    let lagging: Vec<String> = status
        .nodes
        .iter()
        .filter(|n| n.binary_version < target.max(1))
        .map(|n| match n.binary_version {
            0 => format!("node {} did not answer ({})", n.id, n.error),
            v => format!("node {} runs binary version {v}", n.id),
        })
        .collect();
    if target == 0 || !lagging.is_empty() {
        return Err(Status::failed_precondition(format!(
            "cluster version not raised to {target}: {}",
            lagging.join("; ")
        )));
    }
    let current = ctx.sm.cluster_version().get();
    if target <= current {
        return Ok(format!("the cluster is at version {current} already"));
    }
    let request = ticketd_store::Request {
        client_id: ADMIN_CLIENT_ID.into(),
        // The same key for the same target: a retried raise is applied once.
        idempotency_key: format!("cluster-version:{target}"),
        stamped_at_ms: now_ms(),
        command: ticketd_store::Command::SetClusterVersion { version: target },
    };
    let committed = ctx
        .proposer
        .propose(request, 64)
        .await
        .map_err(|e| match e {
            ProposeError::NotLeader(_) | ProposeError::Discarded => Status::unavailable(
                "leadership changed: outcome unknown, ask the new leader for the cluster version",
            ),
            ProposeError::Timeout => Status::deadline_exceeded(
                "the cluster version entry did not commit in time: outcome unknown",
            ),
            ProposeError::Overloaded => {
                Status::resource_exhausted("the leader's proposal queue is full")
            }
            ProposeError::Fatal(e) => internal(e),
        })?;
    match committed.reply.outcome {
        ticketd_store::Outcome::Done(_) => Ok(format!(
            "cluster version raised from {current} to {target} at log index {}",
            committed.log_index
        )),
        ticketd_store::Outcome::Rejected { code, detail } => Err(Status::failed_precondition(
            format!("cluster version not raised: {}: {detail}", code.code()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{snapshot_fits, SNAPSHOT_DISK_HEADROOM_BYTES};

    #[test]
    fn a_snapshot_must_fit_the_cap_and_twice_over_the_free_disk() {
        let gib = 1u64 << 30;
        assert!(snapshot_fits(gib, 2 * gib, None).is_ok());
        assert!(snapshot_fits(2 * gib, 2 * gib, None).is_ok());
        let e = snapshot_fits(2 * gib + 1, 2 * gib, None).unwrap_err();
        assert!(e.contains("cap"), "{e}");
        let just_enough = 2 * gib + SNAPSHOT_DISK_HEADROOM_BYTES;
        assert!(snapshot_fits(gib, 64 * gib, Some(just_enough)).is_ok());
        let e = snapshot_fits(gib, 64 * gib, Some(just_enough - 1)).unwrap_err();
        assert!(e.contains("free"), "{e}");
        // No overflow at the extremes.
        assert!(snapshot_fits(u64::MAX, u64::MAX, Some(u64::MAX - 1)).is_err());
        assert!(snapshot_fits(0, 0, Some(0)).is_err());
        assert!(snapshot_fits(0, 0, Some(SNAPSHOT_DISK_HEADROOM_BYTES)).is_ok());
    }
}
