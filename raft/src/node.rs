//! Assembles a node: RocksDB, log store, state machine, Raft, and the gRPC server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use openraft::async_runtime::WatchReceiver;
use openraft::{Config, ServerState, SnapshotPolicy};

use crate::channels::Channels;
use crate::log_store::LogStore;
use crate::network::NetworkFactory;
use crate::pb;
use crate::service::{AdminService, ClientService, NodeCtx, RaftService, SERVER_OP_DEADLINE};
use crate::state_machine::StateMachine;
use crate::{NodeId, Raft};

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id; never reused for another node.
    pub id: NodeId,
    /// Where its RocksDB and snapshots live.
    pub data_dir: PathBuf,
    /// Address the gRPC server binds.
    pub listen_addr: SocketAddr,
    /// Address peers and clients use to reach it (defaults to `listen_addr`).
    pub advertise_addr: String,
    /// Raft heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout lower bound (upper bound is twice it).
    pub election_timeout_ms: u64,
    /// Build a snapshot after this many applied entries since the last.
    pub snapshot_every_entries: u64,
    /// Log entries kept behind the last snapshot when purging.
    pub logs_kept_after_snapshot: u64,
    /// Where the node serves Prometheus `/metrics` (reported in its status), if it does.
    pub metrics_addr: String,
}

/// A running node.
pub struct Node {
    /// Shared handles.
    pub ctx: NodeCtx,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop_tx: tokio::sync::oneshot::Sender<()>,
}

impl Node {
    /// Opens the node's storage, starts Raft and serves gRPC on `listen_addr`.
    pub async fn start(cfg: NodeConfig) -> anyhow::Result<Node> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("create {}", cfg.data_dir.display()))?;
        let db = Arc::new(crate::open_db(&cfg.data_dir.join("db")).context("open RocksDB")?);
        let log_store = LogStore::new(db.clone()).context("open log store")?;
        let sm = StateMachine::open(db.clone(), cfg.data_dir.join("snapshots"))
            .context("open state machine")?;
        let raft_config = Config {
            cluster_name: "ticketd".to_string(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms,
            election_timeout_max: cfg.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every_entries),
            max_in_snapshot_log_to_keep: cfg.logs_kept_after_snapshot,
            install_snapshot_timeout: 120_000,
            enable_pre_vote: Some(true),
            enable_leader_restore: Some(crate::ENABLE_LEADER_RESTORE),
            ..Default::default()
        };
        let raft_config = Arc::new(raft_config.validate().context("raft config")?);
        let channels = Channels::default();
        let raft = Raft::new(
            cfg.id,
            raft_config,
            NetworkFactory::new(channels.clone()),
            log_store,
            sm.clone(),
        )
        .await
        .context("start raft")?;
        let proposer = crate::proposer::Proposer::start(raft.clone(), SERVER_OP_DEADLINE);
        let ctx = NodeCtx {
            id: cfg.id,
            addr: cfg.advertise_addr.clone(),
            proposer,
            raft,
            sm,
            channels,
            db,
            metrics_addr: cfg.metrics_addr.clone(),
            reconcile: Default::default(),
        };

        let listener = tokio::net::TcpListener::bind(cfg.listen_addr)
            .await
            .with_context(|| format!("bind {}", cfg.listen_addr))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .concurrency_limit_per_connection(1024)
            .add_service(
                pb::raft_server::RaftServer::new(RaftService(ctx.clone()))
                    .max_decoding_message_size(64 << 20),
            )
            .add_service(pb::client_server::ClientServer::new(ClientService(
                ctx.clone(),
            )))
            .add_service(pb::admin_server::AdminServer::new(AdminService(
                ctx.clone(),
            )));
        // The builder's tcp_nodelay covers only listeners tonic binds itself: set it on this
        // one's connections too, or Nagle holds small replies (stream appends' answers, write
        // replies) until the peer's delayed ACK, 40 ms at a time.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        }));
        tokio::spawn(export_metrics(ctx.raft.clone()));
        tracing::info!(id = cfg.id, addr = %cfg.advertise_addr, "node started");
        Ok(Node {
            ctx,
            server,
            stop_tx,
        })
    }

    /// Stops serving, shuts Raft down and waits for both.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop_tx.send(());
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), self.server).await {
            tracing::warn!(error = %e, "gRPC server did not stop in time");
        }
        self.ctx.raft.shutdown().await.context("raft shutdown")?;
        // The WAL holds everything already; one last fsync makes a clean stop lose nothing
        // even of what was not yet acknowledged.
        self.ctx.db.flush_wal(true).context("final WAL fsync")?;
        // Stop RocksDB's flushes and compactions before the process exits: one still running
        // when the C++ static destructors run can abort the exit (a stop that looks like a
        // crash, though nothing is lost).
        self.ctx.db.cancel_all_background_work(true);
        tracing::info!(id = self.ctx.id, "node stopped");
        Ok(())
    }
}

/// Mirrors Raft's metrics into Prometheus gauges whenever they change.
async fn export_metrics(raft: Raft) {
    let mut rx = raft.metrics();
    loop {
        {
            let m = rx.borrow_watched().clone();
            metrics::gauge!("ticketd_raft_term").set(m.current_term as f64);
            metrics::gauge!("ticketd_raft_leader_id")
                .set(m.current_leader.map(|l| l as f64).unwrap_or(-1.0));
            metrics::gauge!("ticketd_raft_is_leader").set(if m.state == ServerState::Leader {
                1.0
            } else {
                0.0
            });
            metrics::gauge!("ticketd_raft_last_log_index")
                .set(m.last_log_index.unwrap_or(0) as f64);
            metrics::gauge!("ticketd_raft_commit_index")
                .set(m.cluster_committed.as_ref().map(|l| l.index).unwrap_or(0) as f64);
            metrics::gauge!("ticketd_raft_applied_index")
                .set(m.last_applied.as_ref().map(|l| l.index).unwrap_or(0) as f64);
            metrics::gauge!("ticketd_raft_snapshot_index")
                .set(m.snapshot.as_ref().map(|l| l.index).unwrap_or(0) as f64);
            metrics::gauge!("ticketd_raft_purged_index")
                .set(m.purged.as_ref().map(|l| l.index).unwrap_or(0) as f64);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
