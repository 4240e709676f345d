//! `ticketd`: runs a node of the replicated ticket store.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

/// mimalloc for the Rust heap (glibc malloc's locking and consolidation showed up at about
/// 15% of samples under load); C/C++ code (RocksDB) keeps the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;
use ticketd_cluster::config::NodeFileConfig;
use ticketd_cluster::telemetry;
use ticketd_cluster::tls::{Presence, TlsPaths};
use ticketd_raft::identity::{Identity, Role};
use ticketd_raft::node::{Node, NodeConfig};

#[derive(Parser)]
#[command(
    name = "ticketd",
    version,
    about = "A Raft-replicated, strongly consistent ticket store"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node of the cluster.
    Node(Box<NodeArgs>),
    /// Run the stateless HTTP API in front of a cluster.
    Api(Box<ApiArgs>),
    /// Print the HTTP API's OpenAPI 3.1 document (the copy in docs/openapi.json is this output).
    Openapi,
    /// Write the demo data set (idempotent) into a running cluster: sellers, venues, events,
    /// and demo accounts with a published password. Only with `--demo`.
    Seed(Box<SeedArgs>),
    /// Make a cluster's CA and its parties' certificates (see docs/OPERATIONS.md).
    #[command(subcommand)]
    Certs(CertsCmd),
}

/// `ticketd seed`.
#[derive(clap::Args)]
struct SeedArgs {
    /// Yes, write the demo data set, its well-known accounts included (never into a
    /// production cluster).
    #[arg(long)]
    demo: bool,
    /// Comma-separated gRPC endpoints of the cluster.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    #[command(flatten)]
    tls: ClientTlsArgs,
    /// Leave out the 50,400-seat stadium.
    #[arg(long)]
    no_stadium: bool,
    /// Also create this many load-test buyers, users `buyer-1..=N` without accounts
    /// (`ticketd-load --mint-users` signs tokens for them with the API's key).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    buyers: u32,
}

/// `ticketd certs ...`: files go into `--dir`; existing files are kept.
#[derive(Subcommand)]
enum CertsCmd {
    /// The cluster's CA: ca.pem and ca-key.pem (keep the key offline in production).
    CreateCa {
        /// Directory of the certificates.
        #[arg(long)]
        dir: PathBuf,
    },
    /// A node's certificate, naming ticketd://node/<id>: node-<id>.pem, node-<id>-key.pem.
    CreateNode {
        /// Directory of the certificates (with the CA).
        #[arg(long)]
        dir: PathBuf,
        /// The node's id.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// Extra DNS names or IP addresses for other tools (ticketd checks the id only).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Days of validity.
        #[arg(long, default_value_t = ticketd_cluster::certs::CERT_DAYS)]
        days: i64,
    },
    /// A client's certificate: ticketd://api/<name> for the HTTP API, ticketd://admin/<name>
    /// for an operator: <role>-<name>.pem, <role>-<name>-key.pem.
    CreateClient {
        /// Directory of the certificates (with the CA).
        #[arg(long)]
        dir: PathBuf,
        /// `api` or `admin`.
        #[arg(long)]
        role: String,
        /// Its name: 1 to 64 of A-Z a-z 0-9 . _ -
        #[arg(long)]
        name: String,
        /// Days of validity.
        #[arg(long, default_value_t = ticketd_cluster::certs::CERT_DAYS)]
        days: i64,
    },
    /// Everything a development cluster needs, each made unless it exists: the CA, nodes
    /// 1..=N, api-dev and admin-dev.
    Dev {
        /// Directory of the certificates.
        #[arg(long)]
        dir: PathBuf,
        /// Node certificates to make, ids 1..=N.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=1000))]
        nodes: u64,
    },
}

/// How a client of the cluster's gRPC port authenticates.
#[derive(clap::Args)]
struct ClientTlsArgs {
    /// The cluster's CA certificate(s), PEM.
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// This client's certificate, PEM.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Its private key, PEM (mode 0600).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Talk to a cluster that runs without TLS.
    #[arg(long)]
    insecure: bool,
}

impl ClientTlsArgs {
    fn paths(&self) -> TlsPaths {
        TlsPaths {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure: self.insecure,
        }
    }
}

/// The HTTP API process: stateless, so any number of copies may run.
#[derive(clap::Args)]
struct ApiArgs {
    /// HTTP listen address, public (serves /v1, /openapi.json, /healthz, the web pages).
    #[arg(long, env = "TICKETD_API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Listen address of Prometheus /metrics, apart from the public port (loopback by
    /// default; it is not authenticated).
    #[arg(
        long,
        env = "TICKETD_API_METRICS_LISTEN",
        default_value = "127.0.0.1:9180"
    )]
    metrics_listen: std::net::SocketAddr,
    /// Comma-separated gRPC endpoints of the cluster.
    #[arg(
        long,
        env = "TICKETD_API_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    /// The cluster's CA certificate(s), PEM.
    #[arg(long, env = "TICKETD_API_CACERT")]
    cacert: Option<PathBuf>,
    /// This API's certificate (role api, `ticketd certs create-client --role api`), PEM.
    #[arg(long, env = "TICKETD_API_CERT")]
    cert: Option<PathBuf>,
    /// Its private key, PEM (mode 0600).
    #[arg(long, env = "TICKETD_API_KEY")]
    key: Option<PathBuf>,
    /// Talk to a cluster that runs without TLS.
    #[arg(long)]
    insecure: bool,
    /// The root key (64 hex digits, 32 bytes) every other key is derived from with HKDF: the
    /// tokens', the ids', the payment-method vault's and the code secrets'. Every API copy of a
    /// deployment needs the same one. Without it a random one is drawn: tokens and ids die with
    /// the process, and saving a payment method is refused.
    #[arg(long, env = "TICKETD_API_ROOT_KEY", hide_env_values = true)]
    root_key: Option<String>,
    /// Bearer token lifetime in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    token_ttl_s: u64,
    /// Holds one user may create per minute.
    #[arg(long, default_value_t = 30)]
    holds_per_user_per_minute: u32,
    /// Holds one IP address may create per minute.
    #[arg(long, default_value_t = 120)]
    holds_per_ip_per_minute: u32,
    /// How long a new hold keeps its seats, seconds (5..=1800); the store's 600 when not given.
    /// Shorter for load tests of expiry.
    #[arg(long, value_parser = clap::value_parser!(u64).range(5..=1800))]
    hold_ttl_s: Option<u64>,
    /// Most concurrent writes sent to the cluster in one call (0: one call per write).
    #[arg(long, default_value_t = 256)]
    write_batch_max: usize,
    /// The payment provider's API: `host:port` (plain HTTP, the local simulator) or an
    /// `https://` URL; purchases are refused without one.
    #[arg(long, env = "TICKETD_API_PAYMENTS")]
    payments: Option<String>,
    /// The payment provider's secret key, sent as `Authorization: Bearer` (only over HTTPS or
    /// to loopback).
    #[arg(long, env = "TICKETD_API_PAYMENTS_SECRET_KEY", hide_env_values = true)]
    payments_secret_key: Option<String>,
    /// PEM CA(s) the payment provider's certificate must chain to, instead of the system's.
    #[arg(long, env = "TICKETD_API_PAYMENTS_CA")]
    payments_ca: Option<PathBuf>,
    /// Deadline of one payment provider call, ms (past it, a purchase is a PAYMENT_TIMEOUT nack).
    #[arg(long, default_value_t = 5_000)]
    payments_timeout_ms: u64,
    /// FAULT INJECTION for crash tests only: `crash-after:STEP` exits the process right after a
    /// purchase saga step, `pause-after:STEP:MS` pauses there (STEP: authorize, start, confirm).
    #[arg(long, hide = true)]
    test_fault: Option<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
    /// Threads of the async runtime (default: one per CPU; on a machine shared with the
    /// nodes: a share of its CPUs).
    #[arg(long, env = "TICKETD_API_RUNTIME_THREADS", value_parser = clap::value_parser!(u64).range(1..=ticketd_cluster::config::RUNTIME_THREADS_MAX as u64))]
    runtime_threads: Option<u64>,
}

/// Flags override `TICKETD_*` environment variables, which override the config file.
#[derive(clap::Args, Serialize)]
struct NodeArgs {
    /// TOML config file.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Node id (>= 1, never reused).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    /// Data directory.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// Address others reach this node at.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    advertise: Option<String>,
    /// Prometheus /metrics listen address.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
    /// Raft heartbeat interval in ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_ms: Option<u64>,
    /// Raft election timeout lower bound in ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    election_timeout_ms: Option<u64>,
    /// Build a snapshot after this many log entries.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_every_entries: Option<u64>,
    /// Log entries kept behind a snapshot when purging.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    logs_kept_after_snapshot: Option<u64>,
    /// Log format: text or json.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    /// Threads of the async runtime (default: one per CPU; nodes sharing a machine: a share).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=ticketd_cluster::config::RUNTIME_THREADS_MAX as u64))]
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_threads: Option<u64>,
    /// Run the leader's background worker (the default; hold expiry without providers).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    worker: bool,
    /// The cluster's CA certificate(s), PEM.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    cacert: Option<PathBuf>,
    /// This node's certificate (naming ticketd://node/<id>), PEM.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<PathBuf>,
    /// Its private key, PEM (mode 0600).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<PathBuf>,
    /// Serve and call peers WITHOUT TLS: anyone who reaches the port may do anything. Only on
    /// the command line (never from a file or the environment), and logged loudly.
    #[arg(long)]
    #[serde(skip)]
    insecure: bool,
    /// Largest snapshot accepted from a peer, bytes.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_recv_max_bytes: Option<u64>,
    /// Payment provider address (`host:port`): enables the reconciler and refunds.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    payments: Option<String>,
    /// Deadline of one payment provider call, ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    payments_timeout_ms: Option<u64>,
    /// SMTP relay host for email notifications.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    smtp_host: Option<String>,
    /// SMTP relay port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    smtp_port: Option<u16>,
    /// Sender address of notifications.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    smtp_from: Option<String>,
    /// SMS provider address (`host:port`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sms: Option<String>,
    /// Period of hold-expiry proposals, ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_period_ms: Option<u64>,
    /// Period of reconcile passes, ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    reconcile_period_ms: Option<u64>,
    /// Intents younger than this are left to the API's purchase in flight, ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    reconcile_grace_ms: Option<u64>,
    /// How far back the reconciler lists intents, ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    reconcile_lookback_ms: Option<u64>,
    /// Period of notification dispatch passes, ms.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    dispatch_period_ms: Option<u64>,
    /// Notifications delivered per dispatch pass at most.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    dispatch_batch: Option<usize>,
    /// Failed deliveries of one notification before it is parked (retried hourly).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    send_attempts_max: Option<u32>,
    /// Period of the leader's replica digests, ms (0: only on demand, `ticketctl endpoint
    /// hashkv`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    digest_period_ms: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    // rustls's crypto provider for the whole process (ring): reqwest and lettre take none of
    // their own.
    ticketd_raft::tls::install_provider();
    ticketd_cluster::process::disable_huge_pages();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node(args) => {
            let config = NodeFileConfig::load(args.config.as_ref(), &*args)?;
            telemetry::init_logs(&config.log_format);
            let rt = ticketd_cluster::process::runtime(config.runtime_threads)?;
            let result = rt.block_on(run_node(config, args.insecure));
            // Do not wait on idle connection tasks: everything durable is flushed by now.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            // A state at a cluster version past this binary's is refused when the node opens.
            if let (Err(e), Some(why)) = (&result, ticketd_raft::version::halted()) {
                tracing::error!(error = %format!("{e:#}"), "the node did not start");
                exit_unsupported(why);
            }
            result
        }
        Cmd::Certs(cmd) => certs(cmd),
        Cmd::Seed(args) => {
            let SeedArgs {
                demo,
                endpoints,
                tls,
                no_stadium,
                buyers,
            } = *args;
            telemetry::init_logs("text");
            anyhow::ensure!(
                demo,
                "ticketd seed writes the demo data set, with accounts whose password is published: \
                 pass --demo to confirm this cluster is for development or testing"
            );
            let transport = tls
                .paths()
                .transport("ticketd seed", Presence::Role(Role::Api))?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async move {
                    let client = ticketd_raft::client::ClusterClient::new(
                        endpoints,
                        Default::default(),
                        transport,
                    );
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_millis() as i64;
                    ticketd_cluster::demo::seed(&client, now_ms, !no_stadium).await?;
                    tracing::info!("demo data written");
                    if buyers > 0 {
                        ticketd_cluster::demo::buyers(&client, buyers, 256).await?;
                        tracing::info!(buyers, "load-test buyers written");
                    }
                    anyhow::Ok(())
                })
        }
        Cmd::Openapi => {
            println!("{}", ticketd_http::openapi_json()?);
            Ok(())
        }
        Cmd::Api(args) => {
            telemetry::init_logs(&args.log_format);
            let rt = ticketd_cluster::process::runtime(args.runtime_threads.map(|n| n as usize))?;
            let result = rt.block_on(run_api(*args));
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            result
        }
    }
}

/// `ticketd certs`.
fn certs(cmd: CertsCmd) -> anyhow::Result<()> {
    use ticketd_cluster::certs;
    let report = |made: bool, what: &str, dir: &std::path::Path| {
        let verb = if made { "made" } else { "kept the existing" };
        println!("{verb} {what} in {}", dir.display());
    };
    match cmd {
        CertsCmd::CreateCa { dir } => report(certs::create_ca(&dir)?, "CA", &dir),
        CertsCmd::CreateNode {
            dir,
            id,
            hosts,
            days,
        } => {
            let identity = Identity::Node(id);
            let what = identity.to_string();
            report(certs::issue(&dir, &identity, &hosts, days)?, &what, &dir);
        }
        CertsCmd::CreateClient {
            dir,
            role,
            name,
            days,
        } => {
            let role = match Role::parse(&role) {
                Some(r @ (Role::Api | Role::Admin)) => r,
                _ => anyhow::bail!("--role is api or admin (a node's certificate: create-node)"),
            };
            let identity = Identity::new(role, &name)?;
            let what = identity.to_string();
            report(certs::issue(&dir, &identity, &[], days)?, &what, &dir);
        }
        CertsCmd::Dev { dir, nodes } => {
            let made = certs::dev(&dir, nodes)?;
            if made.is_empty() {
                println!("every development certificate exists in {}", dir.display());
            }
            for m in made {
                println!("made {m} in {}", dir.display());
            }
        }
    }
    Ok(())
}

async fn run_node(config: NodeFileConfig, insecure: bool) -> anyhow::Result<()> {
    let tls = TlsPaths {
        cacert: config.cacert.clone(),
        cert: config.cert.clone(),
        key: config.key.clone(),
        insecure,
    };
    let transport = tls.transport(&format!("node {}", config.id), Presence::Role(Role::Node))?;
    if !config.metrics_listen.ip().is_loopback() {
        tracing::warn!(addr = %config.metrics_listen, "/metrics and /healthz listen beyond loopback; they are not authenticated");
    }
    let prometheus = telemetry::init_metrics()?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("bind metrics address {}", config.metrics_listen))?;
    let node = Node::start(NodeConfig {
        id: config.id,
        data_dir: config.data_dir.clone(),
        listen_addr: config.listen,
        advertise_addr: config
            .advertise
            .clone()
            .unwrap_or_else(|| config.listen.to_string()),
        heartbeat_ms: config.heartbeat_ms,
        election_timeout_ms: config.election_timeout_ms,
        snapshot_every_entries: config.snapshot_every_entries,
        logs_kept_after_snapshot: config.logs_kept_after_snapshot,
        metrics_addr: metrics_listener.local_addr()?.to_string(),
        transport,
        snapshot_recv_max_bytes: config.snapshot_recv_max_bytes,
    })
    .await?;
    if let Some(worker_config) = config.worker() {
        tracing::info!(payments = ?worker_config.payments, smtp = ?worker_config.smtp, sms = ?worker_config.sms, "background worker configured; it acts while this node leads");
        ticketd_cluster::worker::Worker::new(node.ctx.clone(), worker_config)?.start();
    }

    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(prometheus.render())),
        )
        .route("/healthz", axum::routing::get(|| std::future::ready("ok")));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(async move {
        axum::serve(metrics_listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await
    });

    let halted = tokio::select! {
        r = wait_for_signal() => {
            r?;
            None
        }
        why = ticketd_raft::version::wait_halted() => Some(why),
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(why) = halted {
        // The cluster moved past this binary: stop, loudly, whatever the shutdown says (Raft
        // may have stopped already on the refused entry).
        if let Err(e) = node.shutdown().await {
            tracing::warn!(error = %e, "shutdown after the version stop");
        }
        exit_unsupported(why);
    }
    node.shutdown().await?;
    http.await.context("metrics server task")??;
    Ok(())
}

/// Exits with [`ticketd_raft::version::EXIT_VERSION_UNSUPPORTED`], saying why on stderr too.
fn exit_unsupported(why: &str) -> ! {
    eprintln!(
        "ticketd: this node stops: {why} (exit {})",
        ticketd_raft::version::EXIT_VERSION_UNSUPPORTED
    );
    std::process::exit(ticketd_raft::version::EXIT_VERSION_UNSUPPORTED)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn run_api(args: ApiArgs) -> anyhow::Result<()> {
    use ticketd_raft::client::{ClusterClient, RetryPolicy, WriteBatching};
    let prometheus = telemetry::init_metrics()?;
    let (root, durable) = match &args.root_key {
        Some(hex) => (
            ticketd_http::keys::Keys::parse_root(hex).context("--root-key")?,
            true,
        ),
        None => {
            tracing::warn!(
                "no --root-key: drawing a random one; tokens and ids will not survive a restart, \
                 and saving payment methods is refused"
            );
            let mut root = [0u8; ticketd_http::keys::ROOT_KEY_BYTES];
            for chunk in root.chunks_mut(16) {
                chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            }
            (root, false)
        }
    };
    let keys = ticketd_http::keys::Keys::derive(&root, args.token_ttl_s);
    let limits = ticketd_http::Limits {
        holds_per_user_per_minute: args.holds_per_user_per_minute,
        holds_per_ip_per_minute: args.holds_per_ip_per_minute,
        hold_ttl: args.hold_ttl_s.map(std::time::Duration::from_secs),
        ..Default::default()
    };
    let tls = TlsPaths {
        cacert: args.cacert.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        insecure: args.insecure,
    };
    let transport = tls.transport("ticketd api", Presence::Role(Role::Api))?;
    let mut cluster = ClusterClient::new(args.endpoints.clone(), RetryPolicy::default(), transport);
    if args.write_batch_max > 0 {
        cluster = cluster.with_write_batching(WriteBatching {
            max_writes: args
                .write_batch_max
                .min(ticketd_raft::client::WRITE_BATCH_MAX),
            ..WriteBatching::default()
        });
    }
    let mut state = ticketd_http::AppState::new(cluster, &keys, limits);
    if let Some(p) = &args.payments {
        let timeout = std::time::Duration::from_millis(args.payments_timeout_ms);
        let target = ticketd_money::outbound::Outbound {
            target: p.clone(),
            secret_key: args.payments_secret_key.clone(),
            ca: args.payments_ca.clone(),
        };
        let provider = ticketd_money::provider::HttpProvider::new(target, timeout)
            .map_err(|e| anyhow::anyhow!("payment provider: {e}"))?;
        state = state.with_payments(provider);
    }
    if durable {
        state = state.with_vault(keys.vault.clone());
    }
    if let Some(fault) = &args.test_fault {
        state = state
            .with_test_fault(fault)
            .map_err(|e| anyhow::anyhow!("--test-fault: {e}"))?;
    }
    let listener =
        ticketd_http::listen(args.listen).with_context(|| format!("bind {}", args.listen))?;
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("bind metrics address {}", args.metrics_listen))?;
    if !args.metrics_listen.ip().is_loopback() {
        tracing::warn!(addr = %args.metrics_listen, "/metrics listens beyond loopback; it is not authenticated");
    }
    tracing::info!(addr = %args.listen, metrics = %args.metrics_listen, endpoints = ?args.endpoints, "API serving");
    let metrics_app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(prometheus.render())),
    );
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let metrics = tokio::spawn(async move {
        axum::serve(metrics_listener, metrics_app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await
    });
    let served = ticketd_http::serve(listener, state, async {
        let _ = wait_for_signal().await;
    })
    .await;
    let _ = stop_tx.send(true);
    metrics.await.context("metrics server task")??;
    served?;
    Ok(())
}
