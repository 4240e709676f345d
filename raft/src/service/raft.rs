//! The Raft service: what peers call (votes, appends, snapshots, leader transfer, versions).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use openraft::vote::RaftLeaderId;
use tonic::{Request, Response, Status, Streaming};

use super::context::{
    bad_request, blob, decode_peer, internal, NodeContext, SNAPSHOT_DISK_FACTOR,
    SNAPSHOT_DISK_HEADROOM_BYTES,
};
use crate::authz::Caller;
use crate::codec::encode;
use crate::pb;
use crate::snapshot::SnapshotFile;
use crate::TypeConfig;

/// The Raft service: what peers call.
pub struct RaftService(pub NodeContext);

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
