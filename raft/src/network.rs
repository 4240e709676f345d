//! The Raft network between nodes over gRPC: one reused channel per peer, a deadline on every
//! call, pipelined appends over a bidirectional stream, snapshots streamed in bounded chunks.

use std::future::Future;
use std::io::Read;
use std::time::Duration;

use futures::{Stream, StreamExt};
use openraft::alias::{SnapshotOf, VoteOf};
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use tonic::transport::Channel;

use crate::channels::Channels;

use crate::codec::{decode, encode};
use crate::pb::{self, raft_client::RaftClient};
use crate::snapshot::SnapshotFile;
use crate::{NodeAddr, NodeId, TypeConfig};

/// Bytes of snapshot file per streamed chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Chunks read ahead of the network while streaming a snapshot.
const SNAPSHOT_CHUNKS_IN_FLIGHT: usize = 4;
/// Deadline of a whole snapshot transfer.
pub const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(120);

/// Makes a [`PeerClient`] per replication target.
#[derive(Clone)]
pub struct NetworkFactory {
    channels: Channels,
}

impl NetworkFactory {
    /// A factory drawing from `channels`.
    pub fn new(channels: Channels) -> Self {
        Self { channels }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            channel: self.channels.get_node(&node.addr, target).ok(),
        }
    }
}

/// The Raft RPC client towards one peer.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    channel: Option<Channel>,
}

fn unreachable(e: &(impl std::error::Error + 'static)) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(e))
}

fn status_err(s: tonic::Status) -> RPCError<TypeConfig> {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown => unreachable(&s),
        _ => RPCError::Network(NetworkError::new(&s)),
    }
}

fn decode_err(e: std::io::Error) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&e))
}

fn with_deadline<T>(msg: T, deadline: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(deadline);
    r
}

impl PeerClient {
    fn client(&self) -> Result<RaftClient<Channel>, RPCError<TypeConfig>> {
        match &self.channel {
            Some(c) => Ok(RaftClient::new(c.clone())),
            None => Err(unreachable(&std::io::Error::other(format!(
                "bad address {} for node {}",
                self.addr, self.target
            )))),
        }
    }

    async fn unary<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &mut self,
        req: &Req,
        deadline: Duration,
        call: impl AsyncFnOnce(
            RaftClient<Channel>,
            tonic::Request<pb::Blob>,
        ) -> Result<tonic::Response<pb::Blob>, tonic::Status>,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let payload = encode(req).map_err(decode_err)?;
        let client = self.client()?;
        let blob = pb::Blob {
            payload,
            format: crate::version::RPC_FORMAT,
        };
        let resp = call(client, with_deadline(blob, deadline))
            .await
            .map_err(status_err)?
            .into_inner();
        crate::version::check_rpc_format("a Raft reply", resp.format).map_err(status_err)?;
        decode(&resp.payload).map_err(decode_err)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&rpc, option.hard_ttl(), async |mut c, r| {
            c.append_entries(r).await
        })
        .await
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let mut input = input;
            // Openraft waits out its backoff inside the request stream, before it yields a
            // session's first request. Taking that request before connecting is what makes the
            // wait happen: a peer that refuses connections (a dead node) is retried at the
            // backoff's pace. Connecting first failed at once and started the next session at
            // once, tens of thousands of times a second, each failure logged.
            let Some(first) = input.next().await else {
                return Ok(Box::pin(futures::stream::empty()) as BoxStream<'s, _>);
            };
            let mut client = self.client()?;
            let input = futures::stream::once(async { first }).chain(input);
            // Encoding cannot fail for in-memory openraft values; a failure ends the stream,
            // which openraft treats as a broken pipeline and retries.
            let requests = tokio_stream::StreamExt::map_while(input, |req| {
                encode(&req).ok().map(|payload| pb::Blob {
                    payload,
                    format: crate::version::RPC_FORMAT,
                })
            });
            // The stream lives as long as replication to this peer: no deadline on the whole
            // call, the server answers each request as it is persisted.
            let _ = option;
            let resp = client.stream_append(requests).await.map_err(status_err)?;
            let out = resp.into_inner().map(|item| {
                let blob = item.map_err(status_err)?;
                decode::<StreamAppendResult<TypeConfig>>(&blob.payload).map_err(decode_err)
            });
            Ok(Box::pin(out) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&rpc, option.hard_ttl(), async |mut c, r| c.vote(r).await)
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&rpc, option.hard_ttl(), async |mut c, r| {
            c.pre_vote(r).await
        })
        .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&req, option.hard_ttl(), async |mut c, r| {
            c.transfer_leader(r).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&other)),
        })?;
        let net = |e: &(dyn std::error::Error + 'static)| {
            StreamingError::<TypeConfig>::Network(NetworkError::new(&std::io::Error::other(
                e.to_string(),
            )))
        };
        let meta = encode(&(vote, snapshot.meta.clone())).map_err(|e| net(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::SnapshotChunk>(SNAPSHOT_CHUNKS_IN_FLIGHT);
        let path = snapshot.snapshot.path.clone();
        // Read the file on a blocking thread, a bounded number of chunks ahead of the network.
        // The first chunk declares the file's size, which the receiver checks before it writes.
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut f = std::fs::File::open(&path)?;
            let size = f.metadata()?.len();
            tx.blocking_send(pb::SnapshotChunk {
                item: Some(pb::snapshot_chunk::Item::Meta(meta)),
                size_bytes: Some(size),
                format: crate::version::RPC_FORMAT,
            })
            .map_err(|_| std::io::Error::other("snapshot receiver gone"))?;
            let mut sent = 0u64;
            // Snapshot files are complete or absent (renamed into place once written), so the
            // file does not grow under the reader; stop at the declared size all the same.
            while sent < size {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK_BYTES];
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Err(std::io::Error::other(format!(
                        "snapshot file ended after {sent} of its {size} bytes"
                    )));
                }
                buf.truncate(n.min((size - sent) as usize));
                let n = buf.len();
                sent += n as u64;
                tx.blocking_send(pb::SnapshotChunk {
                    item: Some(pb::snapshot_chunk::Item::Data(buf)),
                    size_bytes: None,
                    format: crate::version::RPC_FORMAT,
                })
                .map_err(|_| std::io::Error::other("snapshot receiver gone"))?;
            }
            Ok(sent)
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let call = client.snapshot(with_deadline(stream, SNAPSHOT_DEADLINE));
        let resp = tokio::select! {
            r = call => r,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        let resp = resp.map_err(|s| net(&s))?;
        match reader.await {
            Ok(Ok(bytes)) => {
                metrics::counter!("ticketd_snapshot_sent_bytes_total").increment(bytes)
            }
            Ok(Err(e)) => return Err(net(&e)),
            Err(e) => return Err(net(&e)),
        }
        metrics::counter!("ticketd_snapshots_sent_total").increment(1);
        decode(&resp.into_inner().payload).map_err(|e| net(&e))
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(100))))
    }
}
