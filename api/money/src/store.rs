//! The store as the money code reads and writes it: through the cluster client, linearizably.

use ticketd_raft::client::{ClientError, ClusterClient, Consistency};
use ticketd_store::types::{Hold, Payment};
use ticketd_store::{Command, Outcome, Query, QueryResult};

/// The client id of the leader's jobs (reconciler, dispatcher, expiry, cancellations) in the
/// store's idempotency table.
pub const LEADER_CLIENT_ID: &str = "ticketd-worker";

/// A committed write's outcome.
#[derive(Debug, Clone)]
pub struct Written {
    /// What the store did.
    pub outcome: Outcome,
    /// The log index of the entry that carried it.
    pub log_index: u64,
    /// True when the key had been seen and this is the remembered first outcome.
    pub replayed: bool,
}

/// Proposes `command` for `client_id` under the idempotency key `key`.
pub async fn write(
    cluster: &ClusterClient,
    client_id: &str,
    key: &str,
    command: &Command,
) -> Result<Written, ClientError> {
    let w = cluster.write(client_id, key, command).await?;
    Ok(Written {
        outcome: w.reply.outcome,
        log_index: w.log_index,
        replayed: w.reply.replayed,
    })
}

/// The payment `payment_ref` as the store knows it (linearizable); `None`: never started.
pub async fn payment(
    cluster: &ClusterClient,
    payment_ref: &str,
) -> Result<Option<Payment>, ClientError> {
    let query = Query::GetPayment {
        payment_ref: payment_ref.to_string(),
    };
    match cluster
        .read(&query, Consistency::Linearizable)
        .await?
        .result
    {
        QueryResult::Payment(p) => Ok(p),
        other => Err(unexpected(&query, &other)),
    }
}

/// The hold `hold_id` (linearizable); `None`: no such hold.
pub async fn hold(cluster: &ClusterClient, hold_id: &str) -> Result<Option<Hold>, ClientError> {
    let query = Query::GetHold {
        hold_id: hold_id.to_string(),
    };
    match cluster
        .read(&query, Consistency::Linearizable)
        .await?
        .result
    {
        QueryResult::Hold(h) => Ok(h),
        other => Err(unexpected(&query, &other)),
    }
}

/// An answer of another kind than the query asks for: the server failed.
pub fn unexpected(query: &Query, answer: &QueryResult) -> ClientError {
    ClientError::Server(format!("unexpected answer to {query:?}: {answer:?}"))
}

/// Whether a failed call may still have taken effect, or may succeed when repeated with the same
/// key: the caller must not treat it as a refusal.
pub fn is_unknown(e: &ClientError) -> bool {
    matches!(e, ClientError::Unknown(_) | ClientError::Unreachable(_))
}
