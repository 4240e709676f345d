//! Node configuration: built-in defaults, then a TOML file, then `TICKETD_*` environment
//! variables, then command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Configuration of `ticketd node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeFileConfig {
    /// Node id, unique in the cluster and never reused.
    pub id: u64,
    /// Data directory (RocksDB, snapshots).
    pub data_dir: PathBuf,
    /// gRPC listen address (Raft, client and admin services).
    pub listen: SocketAddr,
    /// Address others reach this node at; defaults to `listen`.
    pub advertise: Option<String>,
    /// HTTP listen address of Prometheus `/metrics` and `/healthz`.
    pub metrics_listen: SocketAddr,
    /// Raft heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Raft election timeout lower bound, ms.
    pub election_timeout_ms: u64,
    /// Build a snapshot after this many entries.
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// Log format: `text` or `json`.
    pub log_format: String,
}

impl Default for NodeFileConfig {
    fn default() -> Self {
        Self {
            id: 1,
            data_dir: PathBuf::from(".data/node1"),
            listen: "127.0.0.1:7001".parse().expect("valid literal"),
            advertise: None,
            metrics_listen: "127.0.0.1:9001".parse().expect("valid literal"),
            heartbeat_ms: 100,
            election_timeout_ms: 500,
            snapshot_every_entries: 10_000,
            logs_kept_after_snapshot: 1_000,
            log_format: "text".into(),
        }
    }
}

impl NodeFileConfig {
    /// Merges defaults, the file at `file` (if any), the environment and `overrides`.
    pub fn load(file: Option<&PathBuf>, overrides: &impl Serialize) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(NodeFileConfig::default()));
        if let Some(f) = file {
            if !f.exists() {
                anyhow::bail!("config file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig
            .merge(Env::prefixed("TICKETD_"))
            .merge(Serialized::defaults(overrides));
        let cfg: NodeFileConfig = fig.extract().context("invalid configuration")?;
        if cfg.id == 0 {
            anyhow::bail!("node id must be at least 1");
        }
        if cfg.heartbeat_ms == 0 || cfg.election_timeout_ms <= cfg.heartbeat_ms {
            anyhow::bail!("election_timeout_ms must exceed heartbeat_ms, which must be positive");
        }
        Ok(cfg)
    }
}
