//! The client service: writes (one, or a batch) and reads of the ticket domain.

use openraft::alias::LogIdOf;
use openraft::ReadPolicy;
use tonic::{Request, Response, Status};

use super::context::{bad_request, hint, internal, now_ms, NodeContext, SERVER_OP_DEADLINE};
use crate::authz::Caller;
use crate::codec::{decode, encode};
use crate::pb;
use crate::proposer::ProposeError;
use crate::{NodeId, TypeConfig};

/// The client service: writes and reads of the ticket domain.
pub struct ClientService(pub NodeContext);

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
fn version_gate(ctx: &NodeContext, command: &ticketd_store::Command) -> Result<(), Status> {
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
async fn write_one(ctx: &NodeContext, w: pb::WriteRequest) -> Result<pb::WriteReply, Status> {
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
    ctx: &NodeContext,
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
    ctx: &NodeContext,
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
async fn linearize(ctx: &NodeContext) -> Result<Result<(), pb::LeaderHint>, Status> {
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
