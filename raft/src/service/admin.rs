//! The admin service: membership, leadership, snapshots, status, digests, reconcile, cluster version.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ForwardToLeader, RaftError};
use openraft::{ChangeMembers, ServerState};
use tonic::{Request, Response, Status};

use super::context::{
    bad_request, digest_reply, hint, internal, now_ms, NodeContext, ADMIN_CLIENT_ID,
    RECONCILE_DEADLINE, SERVER_OP_DEADLINE,
};
use crate::pb;
use crate::proposer::ProposeError;
use crate::{NodeAddr, NodeId, TypeConfig};

/// The admin service: what `ticketctl` calls.
pub struct AdminService(pub NodeContext);

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
async fn cluster_version_status(ctx: &NodeContext) -> pb::ClusterVersionStatus {
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
async fn node_binary_version(ctx: &NodeContext, id: NodeId, addr: &str) -> Result<u32, String> {
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
    ctx: &NodeContext,
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
