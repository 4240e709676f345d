//! Assembles a node: RocksDB, log store, state machine, Raft, and the gRPC server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use openraft::async_runtime::WatchReceiver;
use openraft::{Config, ServerState, SnapshotPolicy};

use crate::authz::{AuthzLayer, Gate};
use crate::channels::Channels;
use crate::identity::Identity;
use crate::log_store::LogStore;
use crate::network::NetworkFactory;
use crate::pb;
use crate::service::{AdminService, ClientService, NodeContext, RaftService, SERVER_OP_DEADLINE};
use crate::state_machine::StateMachine;
use crate::tls::Transport;
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
    /// Build a snapshot after about this many applied entries since the last; the nodes take
    /// turns (see [`snapshot_due`]).
    pub snapshot_every_entries: u64,
    /// Log entries kept behind the last snapshot when purging.
    pub logs_kept_after_snapshot: u64,
    /// Where the node serves Prometheus `/metrics` (reported in its status), if it does.
    pub metrics_addr: String,
    /// Mutual TLS with the node's certificate (which must name `ticketd://node/<id>`), for its
    /// server and its calls to peers; or, with `--insecure`, plain text and no authorization.
    pub transport: Transport,
    /// Largest snapshot it accepts from a peer, bytes.
    pub snapshot_recv_max_bytes: u64,
}

/// A running node.
pub struct Node {
    /// Shared handles.
    pub ctx: NodeContext,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop_tx: tokio::sync::oneshot::Sender<()>,
}

/// The node's TLS server configuration, after checking that its certificate names this node.
fn server_tls(cfg: &NodeConfig) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    Ok(match &cfg.transport {
        Transport::Insecure => None,
        Transport::Tls(creds) => {
            let want = Identity::Node(cfg.id);
            anyhow::ensure!(
                creds.identity() == Some(&want),
                "this node is {want}, but its certificate names {}",
                creds
                    .identity()
                    .map_or("no identity".to_string(), |i| i.to_string())
            );
            Some(creds.server_config().context("TLS server configuration")?)
        }
    })
}

/// openraft's settings for this node: its timing, snapshots by `snapshot_scheduler`.
fn raft_config(cfg: &NodeConfig) -> anyhow::Result<Arc<Config>> {
    let config = Config {
        cluster_name: "ticketd".to_string(),
        heartbeat_interval: cfg.heartbeat_ms,
        election_timeout_min: cfg.election_timeout_ms,
        election_timeout_max: cfg.election_timeout_ms * 2,
        // Built when `snapshot_scheduler` says, not at the same index on every node.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: cfg.logs_kept_after_snapshot,
        install_snapshot_timeout: 120_000,
        enable_pre_vote: Some(true),
        enable_leader_restore: Some(crate::ENABLE_LEADER_RESTORE),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().context("raft config")?))
}

impl Node {
    /// Opens the node's storage, starts Raft and serves gRPC on `listen_addr`.
    pub async fn start(cfg: NodeConfig) -> anyhow::Result<Node> {
        let server_tls = server_tls(&cfg)?;
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("create {}", cfg.data_dir.display()))?;
        let db = Arc::new(crate::open_db(&cfg.data_dir.join("db")).context("open RocksDB")?);
        let log_store = LogStore::new(db.clone()).context("open log store")?;
        let sm = StateMachine::open(db.clone(), cfg.data_dir.join("snapshots"))
            .context("open state machine")?;
        let raft_config = raft_config(&cfg)?;
        let channels = Channels::new(cfg.transport.clone());
        let raft = Raft::new(
            cfg.id,
            raft_config,
            NetworkFactory::new(channels.clone()),
            log_store,
            sm.clone(),
        )
        .await
        .context("start raft")?;
        let proposer = crate::proposer::Proposer::start(
            raft.clone(),
            SERVER_OP_DEADLINE,
            sm.cluster_version().clone(),
        );
        let gate = Gate::new(raft.clone(), cfg.id);
        let ctx = NodeContext {
            id: cfg.id,
            addr: cfg.advertise_addr.clone(),
            proposer,
            raft,
            sm,
            channels,
            db,
            metrics_addr: cfg.metrics_addr.clone(),
            reconcile: Default::default(),
            gate: gate.clone(),
            snapshot_recv_max_bytes: cfg.snapshot_recv_max_bytes,
        };

        let listener = tokio::net::TcpListener::bind(cfg.listen_addr)
            .await
            .with_context(|| format!("bind {}", cfg.listen_addr))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // Every call passes the authorization layer first (see `authz`).
        let router = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(1024)
            .layer(AuthzLayer(gate))
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
        // TCP_NODELAY, the TLS handshake and the caller's identity, per connection.
        let incoming = crate::incoming::incoming(listener, server_tls);
        let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        }));
        tokio::spawn(export_metrics(ctx.raft.clone()));
        tokio::spawn(snapshot_scheduler(
            ctx.raft.clone(),
            cfg.id,
            cfg.snapshot_every_entries,
        ));
        metrics::gauge!("ticketd_tls_enabled").set(if cfg.transport.is_insecure() {
            0.0
        } else {
            1.0
        });
        tracing::info!(id = cfg.id, addr = %cfg.advertise_addr, tls = !cfg.transport.is_insecure(), "node started");
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

/// Snapshot turns shared by the nodes of a cluster (a cluster has at most 5 voters).
pub const SNAPSHOT_SLOTS: u64 = 5;

/// How often a node checks whether its snapshot is due.
const SNAPSHOT_CHECK: Duration = Duration::from_millis(100);

/// Least time between two snapshot triggers of a node while the first has not completed (a
/// failed build is tried again after it).
const SNAPSHOT_RETRY: Duration = Duration::from_secs(5);

/// Whether node `id` should build a snapshot at applied index `applied`, its last snapshot
/// being at `last_snapshot`.
///
/// Every node applies the same entries, so a plain "every N entries" makes all of them build at
/// the same index: on one host, or under a quorum that needs two of them, the whole cluster
/// slows down at once. Instead the log is cut into windows of `every / SNAPSHOT_SLOTS` entries
/// that the nodes take in turn (by id modulo [`SNAPSHOT_SLOTS`]): a node builds once `every`
/// entries are applied since its last snapshot and the applied index is in its own window. So
/// nodes whose ids differ modulo 5 build in different windows and each still builds about every
/// `every` entries. Past `2 * every` any window will do (only then may two coincide): the log
/// behind a snapshot stays bounded even when the applied index skips a node's window between
/// two checks.
pub fn snapshot_due(id: u64, applied: u64, last_snapshot: u64, every: u64) -> bool {
    let every = every.max(1);
    let since = applied.saturating_sub(last_snapshot);
    if since < every {
        return false;
    }
    if since >= every.saturating_mul(2) {
        return true;
    }
    let window = (every / SNAPSHOT_SLOTS).max(1);
    (applied / window) % SNAPSHOT_SLOTS == id % SNAPSHOT_SLOTS
}

/// Triggers this node's snapshots when [`snapshot_due`] says, checking every
/// [`SNAPSHOT_CHECK`]; a trigger not followed by a new snapshot is repeated after
/// [`SNAPSHOT_RETRY`] at the earliest.
async fn snapshot_scheduler(raft: Raft, id: u64, every: u64) {
    let rx = raft.metrics();
    let mut tick = tokio::time::interval(SNAPSHOT_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut triggered: Option<(u64, std::time::Instant)> = None;
    loop {
        tick.tick().await;
        let (applied, last) = {
            let m = rx.borrow_watched();
            (
                m.last_applied.as_ref().map(|l| l.index).unwrap_or(0),
                m.snapshot.as_ref().map(|l| l.index).unwrap_or(0),
            )
        };
        if let Some((base, at)) = triggered {
            if last == base && at.elapsed() < SNAPSHOT_RETRY {
                continue;
            }
        }
        if !snapshot_due(id, applied, last, every) {
            continue;
        }
        if raft.trigger().snapshot().await.is_err() {
            return; // Raft has stopped.
        }
        triggered = Some((last, std::time::Instant::now()));
    }
}

/// Least time between two exports of Raft's metrics: openraft's metrics change several times
/// per entry (appended, flushed, committed, applied), and the gauges need not follow each one.
const METRICS_EXPORT_EVERY: Duration = Duration::from_millis(50);

/// Mirrors Raft's metrics into Prometheus gauges when they change, at most once per
/// [`METRICS_EXPORT_EVERY`] (the gauges lag by at most that).
async fn export_metrics(raft: Raft) {
    let mut rx = raft.metrics();
    loop {
        {
            // Borrowed, not cloned: the metrics hold maps.
            let m = rx.borrow_watched();
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
        tokio::time::sleep(METRICS_EXPORT_EVERY).await;
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{snapshot_due, SNAPSHOT_SLOTS};

    /// Where each node of `ids` builds its snapshots while the applied index goes from 0 to
    /// `upto`, checked at every index (a node's snapshot lands at the index it was due at).
    fn builds(ids: &[u64], every: u64, upto: u64) -> Vec<Vec<u64>> {
        ids.iter()
            .map(|&id| {
                let mut last = 0;
                let mut at = Vec::new();
                for applied in 1..=upto {
                    if snapshot_due(id, applied, last, every) {
                        at.push(applied);
                        last = applied;
                    }
                }
                at
            })
            .collect()
    }

    #[test]
    fn three_nodes_take_turns_a_fifth_of_the_period_apart() {
        let b = builds(&[1, 2, 3], 100_000, 1_000_000);
        assert_eq!(b[0][..3], [120_000, 220_000, 320_000]);
        assert_eq!(b[1][..3], [140_000, 240_000, 340_000]);
        assert_eq!(b[2][..3], [160_000, 260_000, 360_000]);
        for (i, x) in b.iter().enumerate() {
            for y in &b[i + 1..] {
                for a in x {
                    let nearest = y.iter().map(|c| c.abs_diff(*a)).min().unwrap();
                    assert!(
                        nearest >= 20_000,
                        "{a} is {nearest} from another node's build"
                    );
                }
            }
        }
    }

    #[test]
    fn every_node_builds_about_every_period_and_never_lets_the_log_grow_past_twice_it() {
        for every in [1, 3, 5, 7, 500, 10_000, 100_000] {
            for id in 0..2 * SNAPSHOT_SLOTS {
                let at = builds(&[id], every, 20 * every + 40).remove(0);
                let mut last = 0;
                for a in &at {
                    let gap = a - last;
                    assert!(
                        gap >= every && gap <= 2 * every,
                        "id {id} every {every}: {at:?}"
                    );
                    last = *a;
                }
                assert!(
                    20 * every + 40 - last < 2 * every,
                    "id {id} every {every}: {at:?}"
                );
            }
        }
    }

    #[test]
    fn a_check_that_skips_the_nodes_window_still_builds_by_twice_the_period() {
        // Checked only every 30,000 entries: after the build at 120,000, the checks at 240,000,
        // 270,000 and 300,000 fall outside node 1's window (20,000..40,000 modulo 100,000),
        // and the one at 330,000 builds because 200,000 entries are past.
        let mut last = 0;
        let mut at = Vec::new();
        for applied in (0..=400_000).step_by(30_000) {
            if snapshot_due(1, applied, last, 100_000) {
                at.push(applied);
                last = applied;
            }
        }
        assert_eq!(at[..2], [120_000, 330_000]);
        for w in at.windows(2) {
            assert!(w[1] - w[0] < 200_000 + 30_000, "{at:?}");
        }
    }

    #[test]
    fn nothing_is_due_before_a_full_period() {
        assert!(!snapshot_due(1, 0, 0, 100));
        assert!(!snapshot_due(1, 99, 0, 100));
        assert!(!snapshot_due(1, 1_099, 1_000, 100));
        // Below the last snapshot (a snapshot installed ahead of this node's apply): not due.
        assert!(!snapshot_due(1, 5, 1_000, 100));
    }
}
