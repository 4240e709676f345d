//! Hold expiry: proposes `ExpireHolds` periodically, so seats come back on an idle cluster too
//! (every apply also expires what is due).

use ticketd_money::store::{self, LEADER_CLIENT_ID};
use ticketd_raft::client::ClusterClient;
use ticketd_store::command::Done;
use ticketd_store::{Command, Outcome};

/// Proposes `ExpireHolds` up to now.
pub async fn expire_holds(cluster: &ClusterClient) {
    let now = super::now_ms();
    let command = Command::ExpireHolds { up_to_ms: now };
    match store::write(
        cluster,
        LEADER_CLIENT_ID,
        &format!("expire:{now}"),
        &command,
    )
    .await
    {
        Ok(written) => {
            if let Outcome::Done(Done::HoldsExpired { count }) = written.outcome {
                if count > 0 {
                    tracing::info!(count, "holds expired");
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "ExpireHolds not proposed"),
    }
}
