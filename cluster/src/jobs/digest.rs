//! Replica digests: proposes `DigestState` every `digest_period`, and announces each digest this
//! node computed in a `CheckDigest` entry, against which every replica compares its own
//! (`ticketd_raft::digest`).

use ticketd_money::store::{self, LEADER_CLIENT_ID};
use ticketd_raft::client::ClusterClient;
use ticketd_raft::service::NodeContext;
use ticketd_store::Command;

/// Proposes a digest of every replica's state at the entry's index.
pub async fn propose_digest(cluster: &ClusterClient, node: &NodeContext) {
    let key = format!("digest:{}:{}", node.id, super::now_ms());
    match store::write(cluster, LEADER_CLIENT_ID, &key, &Command::DigestState {}).await {
        Ok(_) => tracing::debug!("replica digest proposed"),
        Err(e) => tracing::debug!(error = %e, "replica digest not proposed"),
    }
}

/// Announces this node's digests computed at indexes above `announced`; returns the newest
/// index announced.
pub async fn announce_digests(
    cluster: &ClusterClient,
    node: &NodeContext,
    mut announced: u64,
) -> u64 {
    for (index, digest) in node.sm.digests().computed_after(announced) {
        let command = Command::CheckDigest {
            index,
            digest: digest.clone(),
        };
        let key = format!("check-digest:{index}");
        match store::write(cluster, LEADER_CLIENT_ID, &key, &command).await {
            Ok(_) => announced = index,
            Err(e) => {
                tracing::debug!(index, error = %e, "digest not announced");
                break;
            }
        }
    }
    announced
}
