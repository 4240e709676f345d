//! Dt cancellations: continues every dt the store shows as canceling with `ContinueCancelDt`
//! entries (each releases or cancels a bounded number of rows) until it is canceled.

use ticketd_money::store::{self, LEADER_CLIENT_ID};
use ticketd_raft::client::ClusterClient;
use ticketd_raft::service::NodeContext;
use ticketd_store::command::Done;
use ticketd_store::{Command, Outcome, Query, QueryResult};

/// Dts whose cancellation one pass continues at most.
const CANCELING_DTS_PER_PASS_MAX: u32 = 16;
/// `ContinueCancelDt` entries one pass proposes per dt at most (each does up to
/// `CANCEL_ROWS_PER_ENTRY_MAX` rows); the next pass goes on.
const CANCEL_STEPS_PER_PASS_MAX: u32 = 1_000;

/// Whether to go on with a dt after one step.
enum Step {
    More,
    Finished,
    /// The cluster did not take the step: stop the pass.
    Stopped,
}

/// Proposes the next steps of every dt this node's state shows as canceling, until each is
/// canceled or the pass's bound is reached.
pub async fn continue_cancellations(cluster: &ClusterClient, node: &NodeContext) {
    let query = Query::CancelingDts {
        limit: CANCELING_DTS_PER_PASS_MAX,
    };
    let dts = match node.sm.query(&query).0 {
        QueryResult::Dts(dts) => dts,
        other => {
            tracing::warn!(answer = ?other, "unexpected answer to CancelingDts");
            return;
        }
    };
    for dt in dts {
        for step in 0..CANCEL_STEPS_PER_PASS_MAX {
            match continue_one(cluster, &dt.dt_id, step).await {
                Step::More => {}
                Step::Finished => break,
                Step::Stopped => return,
            }
        }
    }
}

async fn continue_one(cluster: &ClusterClient, dt_id: &str, step: u32) -> Step {
    let command = Command::ContinueCancelDt {
        dt_id: dt_id.to_string(),
    };
    let key = format!("cancel:{dt_id}:{}:{step}", super::now_ms());
    match store::write(cluster, LEADER_CLIENT_ID, &key, &command).await {
        Ok(written) => match written.outcome {
            Outcome::Done(Done::DtCanceled {
                holds_released,
                orders_canceled,
                ..
            }) => {
                let rows = holds_released.saturating_add(orders_canceled);
                if (rows as usize) < ticketd_store::limits::CANCEL_ROWS_PER_ENTRY_MAX {
                    tracing::info!(dt = %dt_id, "dt canceled");
                    Step::Finished
                } else {
                    Step::More
                }
            }
            outcome => {
                tracing::debug!(dt = %dt_id, ?outcome, "cancellation not continued");
                Step::Finished
            }
        },
        Err(e) => {
            tracing::debug!(dt = %dt_id, error = %e, "cancellation step not proposed");
            Step::Stopped
        }
    }
}
