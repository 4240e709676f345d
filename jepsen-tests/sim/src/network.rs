//! The simulated network between nodes: delay, loss and cut links, all from the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::alias::{SnapshotOf, VoteOf};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ticketd_raft::NodeAddr;

use crate::state_machine::SimRaft;
use crate::state_machine::{SimStateMachine, SnapshotData};
use crate::types::{io_error, SimTypes};

pub(crate) struct NetState {
    pub(crate) rafts: BTreeMap<u64, (SimRaft, SimStateMachine)>,
    /// Directed links that drop everything.
    pub(crate) cut: BTreeSet<(u64, u64)>,
    /// Probability that a message (request or reply) is lost.
    pub(crate) loss: f64,
    pub(crate) rng: ChaCha8Rng,
}

pub(crate) type Net = Arc<Mutex<NetState>>;

#[derive(Clone)]
pub(crate) struct SimNetFactory {
    pub(crate) from: u64,
    pub(crate) net: Net,
}

pub(crate) struct SimPeer {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) net: Net,
}

impl RaftNetworkFactory<SimTypes> for SimNetFactory {
    type Network = SimPeer;

    async fn new_client(&mut self, target: u64, _node: &NodeAddr) -> SimPeer {
        SimPeer {
            from: self.from,
            to: target,
            net: self.net.clone(),
        }
    }
}

pub(crate) enum Hop {
    Down,
    Lost,
    Ok(Duration),
}

pub(crate) fn hop(net: &Net, from: u64, to: u64) -> Hop {
    let mut n = net.lock().expect("net lock");
    if !n.rafts.contains_key(&from) || !n.rafts.contains_key(&to) || n.cut.contains(&(from, to)) {
        return Hop::Down;
    }
    let loss = n.loss;
    if loss > 0.0 && n.rng.random_bool(loss) {
        return Hop::Lost;
    }
    Hop::Ok(Duration::from_micros(n.rng.random_range(200..5_000)))
}

pub(crate) fn rpc_err(what: &str) -> RPCError<SimTypes> {
    RPCError::Unreachable(Unreachable::new(&io_error(what)))
}

impl SimPeer {
    /// Delivers a request, runs it on the target, delivers the reply; either leg may fail.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, RPCError<SimTypes>>
    where
        F: FnOnce(SimRaft) -> Fut,
        Fut: std::future::Future<Output = Result<T, RPCError<SimTypes>>>,
    {
        match hop(&self.net, self.from, self.to) {
            Hop::Down => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Err(rpc_err("link down"));
            }
            Hop::Lost => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Err(RPCError::Network(NetworkError::new(&io_error(
                    "request lost",
                ))));
            }
            Hop::Ok(d) => tokio::time::sleep(d).await,
        }
        let target = {
            let n = self.net.lock().expect("net lock");
            n.rafts.get(&self.to).map(|(r, _)| r.clone())
        };
        let Some(target) = target else {
            return Err(rpc_err("target down"));
        };
        let out = f(target).await?;
        match hop(&self.net, self.to, self.from) {
            Hop::Down => Err(rpc_err("link down on reply")),
            Hop::Lost => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(RPCError::Network(NetworkError::new(&io_error(
                    "reply lost",
                ))))
            }
            Hop::Ok(d) => {
                tokio::time::sleep(d).await;
                Ok(out)
            }
        }
    }
}

pub(crate) fn net_err(e: impl std::error::Error + 'static) -> RPCError<SimTypes> {
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetworkV2<SimTypes> for SimPeer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SimTypes>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<SimTypes>, RPCError<SimTypes>> {
        self.call(|r| async move { r.append_entries(rpc).await.map_err(net_err) })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<SimTypes>,
        _option: RPCOption,
    ) -> Result<VoteResponse<SimTypes>, RPCError<SimTypes>> {
        self.call(|r| async move { r.vote(rpc).await.map_err(net_err) })
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<SimTypes>,
        _option: RPCOption,
    ) -> Result<VoteResponse<SimTypes>, RPCError<SimTypes>> {
        self.call(|r| async move { r.pre_vote(rpc).await.map_err(net_err) })
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<SimTypes>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<SimTypes>, RPCError<SimTypes>> {
        self.call(|r| async move { r.handle_transfer_leader(req).await.map_err(net_err) })
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<SimTypes>,
        snapshot: SnapshotOf<SimTypes, SnapshotData>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<SimTypes>, StreamingError<SimTypes>> {
        self.call(|r| async move {
            r.install_full_snapshot(vote, snapshot)
                .await
                .map_err(net_err)
        })
        .await
        .map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            other => StreamingError::Network(NetworkError::new(&other)),
        })
    }
}
