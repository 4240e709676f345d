//! Who may call what on a node: every gRPC call passes [`AuthzLayer`] before a service sees
//! it. The caller's identity comes from its certificate ([`crate::incoming::Peer`]); the
//! method from the request path. The matrix ([`allowed_roles`]) is the one in
//! docs/OPERATIONS.md:
//!
//! | service, method | `node` | `api` | `admin` |
//! | --- | --- | --- | --- |
//! | `Raft.*` (Vote, PreVote, AppendEntries, StreamAppend, Snapshot, TransferLeader, NodeVersion) | members (\*) | - | - |
//! | `Client.Write`, `Client.WriteBatch` | yes | yes | - |
//! | `Client.Read` | yes, secrets redacted | yes | yes, secrets redacted |
//! | `Client.ReadIndex` | yes | - | - |
//! | `Admin.*` (Init, AddLearner, Promote, Remove, TransferLeader, TriggerSnapshot, Status, Reconcile, ProposeDigest, Digest, ClusterVersion) | - | - | yes |
//!
//! (\*) A node that knows a membership with itself in it accepts Raft calls only from its
//! members and learners; one that knows none yet, or only one without itself (a fresh node, a
//! learner being added, whose first snapshot may predate the leader feeding it), from any node
//! of the CA. The
//! Raft service also checks that the node a message says it comes from is the caller.
//!
//! Followers forward writes to the leader and the leader's worker writes through its own
//! node: hence `node` on `Client`. Secrets in answers (password hashes, ticket code secrets)
//! reach `api` only ([`crate::redact`]).
//!
//! Architecture invariant: a method missing from the matrix is refused, whoever calls it.
//!
//! A refusal is `UNAUTHENTICATED` (no certificate, or one naming no identity) or
//! `PERMISSION_DENIED` (the identity may not call this), with a message that says why; it is
//! counted in `ticketd_grpc_refused_total{method, reason}` and logged at most once per
//! [`crate::log_limit::REFUSAL_LOG_EVERY`] per reason.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use openraft::async_runtime::WatchReceiver;

use crate::identity::{Identity, Role};
use crate::incoming::{Peer, PeerIdentity};
use crate::log_limit::RateLimitedLog;
use crate::{NodeId, Raft};

/// The Raft service's path prefix: its calls need a member node.
const RAFT_SERVICE: &str = "/ticketd.v1.Raft/";

use Role::{Admin, Api, Node};

/// Every method a node serves and the roles that may call it.
pub const MATRIX: &[(&str, &[Role])] = &[
    ("/ticketd.v1.Raft/Vote", &[Node]),
    ("/ticketd.v1.Raft/PreVote", &[Node]),
    ("/ticketd.v1.Raft/AppendEntries", &[Node]),
    ("/ticketd.v1.Raft/StreamAppend", &[Node]),
    ("/ticketd.v1.Raft/Snapshot", &[Node]),
    ("/ticketd.v1.Raft/TransferLeader", &[Node]),
    ("/ticketd.v1.Raft/NodeVersion", &[Node]),
    ("/ticketd.v1.Client/Write", &[Node, Api]),
    ("/ticketd.v1.Client/WriteBatch", &[Node, Api]),
    ("/ticketd.v1.Client/Read", &[Node, Api, Admin]),
    ("/ticketd.v1.Client/ReadIndex", &[Node]),
    ("/ticketd.v1.Admin/Init", &[Admin]),
    ("/ticketd.v1.Admin/AddLearner", &[Admin]),
    ("/ticketd.v1.Admin/Promote", &[Admin]),
    ("/ticketd.v1.Admin/Remove", &[Admin]),
    ("/ticketd.v1.Admin/TransferLeader", &[Admin]),
    ("/ticketd.v1.Admin/TriggerSnapshot", &[Admin]),
    ("/ticketd.v1.Admin/Status", &[Admin]),
    ("/ticketd.v1.Admin/Reconcile", &[Admin]),
    ("/ticketd.v1.Admin/ProposeDigest", &[Admin]),
    ("/ticketd.v1.Admin/Digest", &[Admin]),
    ("/ticketd.v1.Admin/ClusterVersion", &[Admin]),
];

/// The matrix's entry for `path`: the method's name as a metric label and who may call it.
pub fn allowed_roles(path: &str) -> Option<(&'static str, &'static [Role])> {
    MATRIX.iter().find(|(p, _)| *p == path).copied()
}

/// The authenticated caller of a request, for the services (redaction, sender checks). `None`
/// on a node run with `--insecure`.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Identity>);

impl Caller {
    /// The caller of `req` (a request that passed [`AuthzLayer`]).
    pub fn of<T>(req: &tonic::Request<T>) -> Option<&Identity> {
        req.extensions().get::<Caller>().and_then(|c| c.0.as_ref())
    }

    /// True when answers to the caller of `req` may carry secrets: the `api` identity, or
    /// anyone on an insecure node (where nothing is enforced).
    pub fn may_see_secrets<T>(req: &tonic::Request<T>) -> bool {
        match req.extensions().get::<Caller>() {
            Some(Caller(None)) => true,
            Some(Caller(Some(id))) => id.role() == Role::Api,
            None => false,
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No client certificate.
    NoCertificate,
    /// A certificate of the CA that names no valid identity.
    NoIdentity,
    /// A method the matrix does not list.
    UnknownMethod,
    /// The identity's role may not call the method.
    Role,
    /// A node outside the membership this node knows.
    NotMember,
    /// A Raft message that says it comes from another node than the caller.
    SenderMismatch,
}

impl Refusal {
    /// Its label in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoCertificate => "no_certificate",
            Refusal::NoIdentity => "no_identity",
            Refusal::UnknownMethod => "unknown_method",
            Refusal::Role => "role",
            Refusal::NotMember => "not_member",
            Refusal::SenderMismatch => "sender_mismatch",
        }
    }

    fn code(self) -> tonic::Code {
        match self {
            Refusal::NoCertificate | Refusal::NoIdentity => tonic::Code::Unauthenticated,
            _ => tonic::Code::PermissionDenied,
        }
    }
}

/// What the layer and the services share: where membership comes from, the log limiter.
pub struct Gate {
    raft: Raft,
    node_id: NodeId,
    log: RateLimitedLog,
}

impl Gate {
    /// The gate of node `node_id`.
    pub fn new(raft: Raft, node_id: NodeId) -> Arc<Self> {
        Arc::new(Self {
            raft,
            node_id,
            log: RateLimitedLog::default(),
        })
    }

    /// Counts and logs a refusal and makes its status.
    pub fn refuse(&self, method: &'static str, why: Refusal, msg: String) -> tonic::Status {
        metrics::counter!("ticketd_grpc_refused_total", "method" => method, "reason" => why.as_str())
            .increment(1);
        if let Some(suppressed) = self.log.allow(why.as_str()) {
            tracing::warn!(
                node = self.node_id,
                method,
                reason = why.as_str(),
                suppressed,
                "call refused: {msg}"
            );
        }
        tonic::Status::new(why.code(), msg)
    }

    /// The nodes (voters and learners) of the membership this node knows; empty before it knows
    /// one.
    fn members(&self) -> BTreeSet<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect()
    }

    /// Decides a call to `path` from `peer`.
    pub fn decide(&self, path: &str, peer: Option<&Peer>) -> Result<Caller, tonic::Status> {
        let (method, roles) = allowed_roles(path).unwrap_or(("unknown", &[]));
        let identity = match peer.map(|p| &p.identity) {
            Some(PeerIdentity::Insecure) => return Ok(Caller(None)),
            Some(PeerIdentity::Known(id)) => id,
            Some(PeerIdentity::Invalid(e)) => {
                return Err(self.refuse(method, Refusal::NoIdentity, e.to_string()))
            }
            Some(PeerIdentity::NoCertificate) | None => {
                return Err(self.refuse(
                    method,
                    Refusal::NoCertificate,
                    "this node takes calls only from the cluster's parties: present a client \
                     certificate signed by the cluster's CA"
                        .into(),
                ))
            }
        };
        if roles.is_empty() {
            return Err(self.refuse(
                method,
                Refusal::UnknownMethod,
                format!("{path} is not a method this node serves to anyone"),
            ));
        }
        if !roles.contains(&identity.role()) {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return Err(self.refuse(
                method,
                Refusal::Role,
                format!(
                    "{identity} (role {}) may not call {path}; it takes {}",
                    identity.role(),
                    allowed.join(", ")
                ),
            ));
        }
        if let (true, Some(id)) = (path.starts_with(RAFT_SERVICE), identity.node_id()) {
            let members = self.members();
            // A node not yet in the membership it knows is joining: the snapshot it was fed may
            // predate the leader that feeds it now, which it must not refuse (it would never
            // learn the membership naming both). It takes Raft calls from any node of the CA,
            // as a fresh node does, until it knows a membership with itself.
            let joining = !members.contains(&self.node_id);
            if !joining && !members.contains(&id) {
                return Err(self.refuse(
                    method,
                    Refusal::NotMember,
                    format!(
                        "node {id} is not a member of this cluster (members and learners: {members:?})"
                    ),
                ));
            }
        }
        Ok(Caller(Some(identity.clone())))
    }

    /// Checks that a Raft message said to come from node `sender` was sent by that node.
    pub fn check_sender<T>(
        &self,
        req: &tonic::Request<T>,
        method: &'static str,
        sender: NodeId,
    ) -> Result<(), tonic::Status> {
        match Caller::of(req) {
            Some(Identity::Node(id)) if *id != sender => Err(self.refuse(
                method,
                Refusal::SenderMismatch,
                format!("node {id} sent a message in the name of node {sender}"),
            )),
            _ => Ok(()),
        }
    }
}

/// The tower layer that puts [`Gate::decide`] in front of a node's gRPC services.
#[derive(Clone)]
pub struct AuthzLayer(pub Arc<Gate>);

impl<S> tower::Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            gate: self.0.clone(),
        }
    }
}

/// [`AuthzLayer`]'s service.
#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    gate: Arc<Gate>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Authz<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let decision = self
            .gate
            .decide(req.uri().path(), req.extensions().get::<Peer>());
        match decision {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{allowed_roles, MATRIX};
    use crate::identity::Role;

    #[test]
    fn the_matrix_lists_every_method_of_the_wire_protocol() {
        let proto = include_str!("../proto/ticketd.proto");
        let mut service = "";
        let mut served = Vec::new();
        for line in proto.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = rest.trim_end_matches(" {").trim();
            } else if let Some(rest) = line.strip_prefix("rpc ") {
                let name = rest.split('(').next().unwrap().trim();
                served.push(format!("/ticketd.v1.{service}/{name}"));
            }
        }
        let listed: Vec<String> = MATRIX.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(served, listed);
        assert!(allowed_roles("/ticketd.v1.Admin/Nope").is_none());
    }

    #[test]
    fn only_nodes_speak_raft_and_only_admins_administer() {
        for (path, roles) in MATRIX {
            if path.starts_with("/ticketd.v1.Raft/") || path.ends_with("/ReadIndex") {
                assert_eq!(*roles, [Role::Node], "{path}");
            }
            if path.starts_with("/ticketd.v1.Admin/") {
                assert_eq!(*roles, [Role::Admin], "{path}");
            }
            if path.contains("/Write") {
                assert!(!roles.contains(&Role::Admin), "{path}");
            }
        }
    }
}
