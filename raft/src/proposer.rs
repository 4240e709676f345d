//! Leader-side batching of client requests into Raft entries.
//!
//! Every write a node's client service accepts goes through its [`Proposer`]: a bounded queue
//! and one task that proposes what is queued as one entry ([`Proposal`], a batch). At most
//! [`IN_FLIGHT_MAX`] entries of this node are being committed at a time; requests that arrive
//! while every slot is taken wait in the queue and go together into the next entry. A request
//! on a quiet leader therefore gets an entry of its own at once (no added latency), and under a
//! storm one log append, one replication message, one fsync and one apply pass carry up to
//! [`BATCH_REQUESTS_MAX`] requests.
//!
//! The requests of a batch stay independent: each has its own idempotency key, is applied on
//! its own and gets its own reply, with its place in the entry (`seq`). A failure to commit the
//! entry (leadership lost, timeout) is every request's failure, reported as the client service
//! always did: not leader, or outcome unknown.

use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{ClientWriteError, ForwardToLeader, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::version::ClusterVersion;
use crate::{Proposal, Raft, TypeConfig};
use ticketd_store::machine::Reply;
use ticketd_store::Request;

/// Entries of one node being committed at the same time.
pub const IN_FLIGHT_MAX: usize = 4;
/// Requests in one entry.
pub const BATCH_REQUESTS_MAX: usize = 1024;
/// Encoded command bytes in one entry (a single larger request still gets an entry alone).
pub const BATCH_BYTES_MAX: usize = 4 << 20;
/// Requests waiting for an entry; past this a write is refused at once as overloaded.
pub const QUEUE_MAX: usize = 16_384;

/// A committed request: its reply, and where it sits in the log.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The state machine's reply.
    pub reply: Reply,
    /// Index of the entry that carried the request.
    pub log_index: u64,
    /// The request's place in that entry's batch.
    pub seq: u32,
}

/// Why a request was not committed.
#[derive(Debug, Clone)]
pub enum ProposeError {
    /// This node is not the leader (anymore): where to go instead. Nothing was proposed, or
    /// what was proposed was never committed by this node as leader.
    NotLeader(ForwardToLeader<TypeConfig>),
    /// The entry was proposed but the leader changed before it committed: outcome unknown.
    Discarded,
    /// The entry did not commit within the deadline: outcome unknown.
    Timeout,
    /// The queue is full: nothing was proposed.
    Overloaded,
    /// Raft failed (a storage error, shutdown).
    Fatal(String),
}

struct Pending {
    req: Request,
    bytes: usize,
    done: oneshot::Sender<Result<Committed, ProposeError>>,
}

/// The node's proposal queue; clones share it.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the proposing task of `raft`; each entry gets `deadline` to commit and is
    /// encoded at the entry format of the cluster version as `cluster` says when proposed.
    pub fn start(raft: Raft, deadline: Duration, cluster: ClusterVersion) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(raft, rx, deadline, cluster));
        Self { tx }
    }

    /// Queues `req` (whose encoded command is `bytes` long) for the next entry and waits for
    /// its commit.
    pub async fn propose(&self, req: Request, bytes: usize) -> Result<Committed, ProposeError> {
        let (done, wait) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Pending { req, bytes, done }) {
            metrics::counter!("ticketd_proposals_refused_total").increment(1);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => {
                    ProposeError::Fatal("the proposer stopped".into())
                }
            });
        }
        // The proposing task answers every request it took, also on timeout.
        wait.await
            .unwrap_or_else(|_| Err(ProposeError::Fatal("the proposer stopped".into())))
    }
}

async fn run(
    raft: Raft,
    mut rx: mpsc::Receiver<Pending>,
    deadline: Duration,
    cluster: ClusterVersion,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        // Wait for a slot before draining the queue: what piles up meanwhile joins this entry.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < BATCH_REQUESTS_MAX {
            let Ok(p) = rx.try_recv() else { break };
            if bytes + p.bytes > BATCH_BYTES_MAX {
                carried = Some(p);
                break;
            }
            bytes += p.bytes;
            batch.push(p);
        }
        let raft = raft.clone();
        let format = crate::version::entry_format(cluster.get());
        tokio::spawn(async move {
            commit(&raft, batch, deadline, format).await;
            drop(slot);
        });
    }
}

async fn commit(raft: &Raft, batch: Vec<Pending>, deadline: Duration, format: u32) {
    let n = batch.len();
    metrics::histogram!("ticketd_proposal_batch_requests").record(n as f64);
    let (reqs, waiters): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.req, p.done)).unzip();
    let fail = |waiters: Vec<oneshot::Sender<_>>, e: ProposeError| {
        for w in waiters {
            let _ = w.send(Err(e.clone()));
        }
    };
    let started = std::time::Instant::now();
    let written = tokio::time::timeout(
        deadline,
        raft.client_write(Proposal::with_format(reqs, format)),
    )
    .await;
    metrics::histogram!("ticketd_proposal_commit_seconds").record(started.elapsed().as_secs_f64());
    match written {
        Err(_) => fail(waiters, ProposeError::Timeout),
        Ok(Ok(resp)) if resp.data.len() == n => {
            let log_index = resp.log_id.index;
            for (seq, (w, reply)) in waiters.into_iter().zip(resp.data).enumerate() {
                let seq = u32::try_from(seq).expect("batches are bounded");
                // A waiter that gave up (its client's deadline) is simply not answered.
                let _ = w.send(Ok(Committed {
                    reply,
                    log_index,
                    seq,
                }));
            }
        }
        Ok(Ok(resp)) => fail(
            waiters,
            ProposeError::Fatal(format!(
                "the state machine gave {} replies for {n} requests",
                resp.data.len()
            )),
        ),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            fail(waiters, ProposeError::NotLeader(f))
        }
        Ok(Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)))) => {
            fail(waiters, ProposeError::Discarded)
        }
        Ok(Err(e)) => fail(waiters, ProposeError::Fatal(e.to_string())),
    }
}
