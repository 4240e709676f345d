//! Node configuration: built-in defaults, then a TOML file, then `TICKETD_*` environment
//! variables, then command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Most threads a process's async runtime may be given (config file, environment or flag).
pub const RUNTIME_THREADS_MAX: usize = 1024;

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
    /// Build a snapshot after about this many entries (the nodes take turns, a fifth of it
    /// apart).
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Threads of the node's async runtime; one per CPU when not given. Nodes sharing a
    /// machine do better with a share of its CPUs each: every thread more is one more to wake
    /// per request handed between tasks, and on a machine with fewer CPUs than threads those
    /// wake-ups cost CPU the others need (`scripts/cluster-up.sh` gives each node its share).
    pub runtime_threads: Option<usize>,
    /// Run the leader's background worker: hold expiry always, the reconciler and the
    /// dispatcher when a payment provider, SMTP host or SMS provider is configured. On by
    /// default (seats of expired holds come back on an idle cluster); `TICKETD_WORKER=false`
    /// turns it off unless a provider is configured.
    pub worker: bool,
    /// Payment provider for the reconciler and refunds: `host:port` (plain HTTP, the local
    /// simulator) or an `https://` URL.
    pub payments: Option<String>,
    /// The payment provider's secret key, sent as `Authorization: Bearer` (only over HTTPS or
    /// to loopback). From the environment (`TICKETD_PAYMENTS_SECRET_KEY`) or the file, never a
    /// flag.
    pub payments_secret_key: Option<String>,
    /// PEM CA(s) the payment provider's certificate must chain to, instead of the system's.
    pub payments_ca: Option<PathBuf>,
    /// Deadline of one payment provider call, ms.
    pub payments_timeout_ms: u64,
    /// SMTP relay host for email notifications.
    pub smtp_host: Option<String>,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// Sender address of notifications (its domain ends every Message-ID).
    pub smtp_from: String,
    /// SMS provider: `host:port` or an `https://` URL.
    pub sms: Option<String>,
    /// The SMS provider's secret key (as `payments_secret_key`).
    pub sms_secret_key: Option<String>,
    /// PEM CA(s) the SMS provider's certificate must chain to, instead of the system's.
    pub sms_ca: Option<PathBuf>,
    /// STARTTLS to the SMTP relay: `opportunistic` (when offered, the default), `required`,
    /// `off`.
    pub smtp_starttls: ticketd_notify::email::StartTls,
    /// PEM CA(s) the SMTP relay's certificate must chain to, instead of the system's.
    pub smtp_ca: Option<PathBuf>,
    /// Period of `ExpireHolds` proposals, ms.
    pub expire_period_ms: u64,
    /// Period of reconcile passes, ms.
    pub reconcile_period_ms: u64,
    /// Intents younger than this are left to the API's purchase in flight, ms.
    pub reconcile_grace_ms: u64,
    /// How far back the reconciler lists intents, ms.
    pub reconcile_lookback_ms: u64,
    /// Period of notification dispatch passes, ms.
    pub dispatch_period_ms: u64,
    /// Notifications delivered per dispatch pass at most.
    pub dispatch_batch: usize,
    /// Failed deliveries of one notification before it is parked (retried hourly).
    pub send_attempts_max: u32,
    /// The cluster's CA certificate(s), PEM: the node accepts callers whose certificates it
    /// signed and peers whose certificates it signed.
    pub cacert: Option<PathBuf>,
    /// This node's certificate, PEM; it must name `ticketd://node/<id>` for this node's id.
    pub cert: Option<PathBuf>,
    /// Its private key, PEM, readable by its owner only.
    pub key: Option<PathBuf>,
    /// Largest snapshot accepted from a peer, bytes (the sender declares the size first; a
    /// larger one, or one that does not fit the free disk twice over, is refused before a
    /// byte is written).
    pub snapshot_recv_max_bytes: u64,
    /// Period of the leader's replica digests (`DigestState`, then `CheckDigest` with its
    /// own), ms; 0: only on demand (`ticketctl endpoint hashkv`).
    pub digest_period_ms: u64,
}

impl Default for NodeFileConfig {
    fn default() -> Self {
        Self {
            id: 1,
            data_dir: PathBuf::from(".data/node1"),
            listen: "127.0.0.1:7001".parse().expect("valid literal"),
            advertise: None,
            metrics_listen: "127.0.0.1:9001".parse().expect("valid literal"),
            // A follower campaigns after the leader lease (openraft's election_timeout_max, twice
            // this lower bound) plus a random election timeout in [100, 200) ms have passed
            // without word from the leader: 300-400 ms after a leader dies, 6-8 heartbeats.
            heartbeat_ms: 50,
            election_timeout_ms: 100,
            // etcd's default too: every node writes its whole state (tens of MB under a sale)
            // at about the same index, which costs CPU and disk bandwidth next to the log's
            // fsyncs; at 10,000 a storm of one-request entries snapshotted every few seconds.
            snapshot_every_entries: 100_000,
            logs_kept_after_snapshot: 1_000,
            log_format: "text".into(),
            runtime_threads: None,
            worker: true,
            payments: None,
            payments_secret_key: None,
            payments_ca: None,
            payments_timeout_ms: 5_000,
            smtp_host: None,
            smtp_port: 25,
            smtp_from: "tickets@ticketd.local".into(),
            sms: None,
            sms_secret_key: None,
            sms_ca: None,
            smtp_starttls: Default::default(),
            smtp_ca: None,
            expire_period_ms: 500,
            reconcile_period_ms: 30_000,
            reconcile_grace_ms: 60_000,
            reconcile_lookback_ms: 24 * 3_600_000,
            dispatch_period_ms: 1_000,
            dispatch_batch: 64,
            send_attempts_max: 8,
            cacert: None,
            cert: None,
            key: None,
            snapshot_recv_max_bytes: ticketd_raft::service::SNAPSHOT_RECV_MAX_BYTES,
            // Every node reads its whole state at low priority, like a snapshot build.
            digest_period_ms: 600_000,
        }
    }
}

impl NodeFileConfig {
    /// Merges defaults, the file at `file` (if any), the environment and `overrides`.
    pub fn load(file: Option<&PathBuf>, overrides: &impl Serialize) -> anyhow::Result<Self> {
        let mut layers = Figment::from(Serialized::defaults(NodeFileConfig::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            layers = layers.merge(Toml::file(path));
        }
        layers = layers
            .merge(Env::prefixed("TICKETD_"))
            .merge(Serialized::defaults(overrides));
        let config: NodeFileConfig = layers.extract().context("invalid configuration")?;
        if config.id == 0 {
            anyhow::bail!("node id must be at least 1");
        }
        if config.heartbeat_ms == 0 || config.election_timeout_ms <= config.heartbeat_ms {
            anyhow::bail!("election_timeout_ms must exceed heartbeat_ms, which must be positive");
        }
        if let Some(n) = config.runtime_threads {
            if !(1..=RUNTIME_THREADS_MAX).contains(&n) {
                anyhow::bail!("runtime_threads must be 1 to {RUNTIME_THREADS_MAX}, got {n}");
            }
        }
        if [
            config.payments_timeout_ms,
            config.expire_period_ms,
            config.reconcile_period_ms,
            config.dispatch_period_ms,
        ]
        .contains(&0)
            || config.dispatch_batch == 0
            || !(1..=ticketd_store::limits::DELIVERY_ATTEMPTS_MAX)
                .contains(&config.send_attempts_max)
        {
            anyhow::bail!(
                "worker periods, timeouts and batch must be positive, and send attempts \
                 1..={}",
                ticketd_store::limits::DELIVERY_ATTEMPTS_MAX
            );
        }
        if config.snapshot_recv_max_bytes == 0 {
            anyhow::bail!("snapshot_recv_max_bytes must be positive");
        }
        Ok(config)
    }

    /// The background worker's configuration, when it runs.
    pub fn worker(&self) -> Option<crate::worker::WorkerConfig> {
        use std::time::Duration;
        let on = self.worker
            || self.payments.is_some()
            || self.smtp_host.is_some()
            || self.sms.is_some();
        on.then(|| crate::worker::WorkerConfig {
            payments: self
                .payments
                .as_ref()
                .map(|t| ticketd_money::outbound::Outbound {
                    target: t.clone(),
                    secret_key: self.payments_secret_key.clone(),
                    ca: self.payments_ca.clone(),
                }),
            payments_timeout: Duration::from_millis(self.payments_timeout_ms),
            smtp: self
                .smtp_host
                .as_ref()
                .map(|host| crate::worker::SmtpConfig {
                    host: host.clone(),
                    port: self.smtp_port,
                    from: self.smtp_from.clone(),
                    tls: ticketd_notify::email::SmtpTls {
                        starttls: self.smtp_starttls,
                        ca: self.smtp_ca.clone(),
                    },
                }),
            sms: self
                .sms
                .as_ref()
                .map(|t| ticketd_money::outbound::Outbound {
                    target: t.clone(),
                    secret_key: self.sms_secret_key.clone(),
                    ca: self.sms_ca.clone(),
                }),
            expire_period: Duration::from_millis(self.expire_period_ms),
            reconcile_period: Duration::from_millis(self.reconcile_period_ms),
            reconcile_grace: Duration::from_millis(self.reconcile_grace_ms),
            reconcile_lookback: Duration::from_millis(self.reconcile_lookback_ms),
            dispatch_period: Duration::from_millis(self.dispatch_period_ms),
            dispatch_batch: self.dispatch_batch,
            send_attempts_max: self.send_attempts_max,
            digest_period: Duration::from_millis(self.digest_period_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::NodeFileConfig;

    #[derive(serde::Serialize)]
    struct Threads {
        runtime_threads: usize,
    }

    #[test]
    fn runtime_threads_are_bounded() {
        let load = |n| NodeFileConfig::load(None, &Threads { runtime_threads: n });
        assert_eq!(load(1).unwrap().runtime_threads, Some(1));
        assert_eq!(load(1024).unwrap().runtime_threads, Some(1024));
        for bad in [0, 1025, 1 << 20] {
            let e = load(bad).unwrap_err().to_string();
            assert!(
                e.contains("runtime_threads must be 1 to 1024"),
                "{bad}: {e}"
            );
        }
        assert_eq!(NodeFileConfig::default().runtime_threads, None);
    }
}
