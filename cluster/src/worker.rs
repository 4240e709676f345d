//! The leader's background worker, run inside `ticketd node` while the node is the Raft leader:
//! the wiring of the leader's jobs, each of which lives where its subject does:
//!
//! - **hold expiry**, **replica digests** and **dt cancellations**: [`crate::jobs`];
//! - **the reconciler** (periodic, and on demand through `ticketctl reconcile`):
//!   `ticketd_money::reconciler`, by the money rule `ticketd_money::decide`;
//! - **the notification dispatcher**: `ticketd_notify::dispatcher`.
//!
//! The worker starts the jobs' loops when the node becomes leader and stops them when it no
//! longer is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketd_money::reconciler::{Reconciler, ReconcilerConfig};
use ticketd_notify::dispatcher::{Dispatcher, DispatcherConfig, LocalReads};
use ticketd_raft::client::{ClusterClient, RetryPolicy};
use ticketd_raft::service::NodeContext;

use crate::jobs;

/// How often the worker looks for digests to announce.
const DIGEST_POLL: Duration = Duration::from_secs(1);
/// How often the worker looks at whether this node leads.
const LEADER_POLL: Duration = Duration::from_millis(200);

/// SMTP relay settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Sender address; its domain ends every `Message-ID`.
    pub from: String,
    /// STARTTLS and the CA the relay's certificate is checked against.
    pub tls: ticketd_notify::email::SmtpTls,
}

/// What the worker talks to and how often it acts.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Payment provider (`host:port` or an `https://` URL, its secret key and CA); without it
    /// there is no reconciler and no refunds.
    pub payments: Option<ticketd_money::outbound::Outbound>,
    /// Deadline of one provider call.
    pub payments_timeout: Duration,
    /// SMTP relay; without it no email.
    pub smtp: Option<SmtpConfig>,
    /// SMS provider (as the payment provider); without it no SMS.
    pub sms: Option<ticketd_money::outbound::Outbound>,
    /// Period of `ExpireHolds` proposals.
    pub expire_period: Duration,
    /// Period of reconcile passes.
    pub reconcile_period: Duration,
    /// Intents younger than this are left to the API's saga in flight.
    pub reconcile_grace: Duration,
    /// How far back the reconciler lists intents.
    pub reconcile_lookback: Duration,
    /// Period of dispatch passes.
    pub dispatch_period: Duration,
    /// Notifications delivered per dispatch pass at most.
    pub dispatch_batch: usize,
    /// Attempts of one notification before it is parked (retried again only by an on-demand
    /// `ticketctl reconcile`, or by the next leader).
    pub send_attempts_max: u32,
    /// Period of replica digests (`DigestState`); zero: only on demand.
    pub digest_period: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            payments: None,
            payments_timeout: Duration::from_secs(5),
            smtp: None,
            sms: None,
            expire_period: Duration::from_millis(500),
            digest_period: Duration::from_secs(600),
            reconcile_period: Duration::from_secs(30),
            reconcile_grace: Duration::from_secs(60),
            reconcile_lookback: Duration::from_secs(24 * 3600),
            dispatch_period: Duration::from_secs(1),
            dispatch_batch: 64,
            send_attempts_max: 8,
        }
    }
}

/// The worker of one node; acts only while the node leads.
pub struct Worker {
    node: NodeContext,
    config: WorkerConfig,
    cluster: Arc<ClusterClient>,
    reconciler: Option<Reconciler>,
    dispatcher: Arc<Dispatcher>,
}

impl Worker {
    /// A worker for the node `node`.
    pub fn new(node: NodeContext, config: WorkerConfig) -> anyhow::Result<Arc<Self>> {
        use ticketd_money::provider::HttpProvider;
        let provider = |target: &ticketd_money::outbound::Outbound| {
            HttpProvider::new(target.clone(), config.payments_timeout)
                .map_err(|e| anyhow::anyhow!("payment provider: {e}"))
        };
        let mailer = match &config.smtp {
            Some(smtp) => Some(
                ticketd_notify::email::SmtpMailer::new(
                    &smtp.host,
                    smtp.port,
                    &smtp.from,
                    Duration::from_secs(10),
                    &smtp.tls,
                )
                .map_err(|e| anyhow::anyhow!("SMTP relay: {e}"))?,
            ),
            None => None,
        };
        let sms = match &config.sms {
            Some(target) => Some(
                ticketd_notify::sms::HttpSms::new(target.clone(), Duration::from_secs(5))
                    .map_err(|e| anyhow::anyhow!("SMS provider: {e}"))?,
            ),
            None => None,
        };
        // Writes go to this node (the leader while the worker acts), as this node; hints are
        // followed.
        let cluster = Arc::new(ClusterClient::new(
            vec![node.addr.clone()],
            RetryPolicy {
                attempts_max: 6,
                attempt_timeout: Duration::from_secs(3),
                total_deadline: Duration::from_secs(8),
                backoff: Duration::from_millis(50),
            },
            node.channels.transport().clone(),
        ));
        let reconciler = match &config.payments {
            Some(target) => Some(Reconciler::new(
                cluster.clone(),
                provider(target)?,
                ReconcilerConfig {
                    grace: config.reconcile_grace,
                    lookback: config.reconcile_lookback,
                    cluster_version: node.sm.cluster_version().clone(),
                },
            )),
            None => None,
        };
        let state_machine = node.sm.clone();
        let local: LocalReads = Arc::new(move |query| state_machine.query(query).0);
        let dispatcher = Arc::new(Dispatcher::new(
            cluster.clone(),
            local,
            DispatcherConfig {
                provider: config.payments.as_ref().map(provider).transpose()?,
                mailer,
                sms,
                batch: config.dispatch_batch,
                attempts_max: config.send_attempts_max,
                cluster_version: node.sm.cluster_version().clone(),
            },
        ));
        Ok(Arc::new(Self {
            node,
            config,
            cluster,
            reconciler,
            dispatcher,
        }))
    }

    fn is_leader(&self) -> bool {
        self.node.leader().is_some_and(|(id, _)| id == self.node.id)
    }

    /// Registers `ticketctl reconcile` with the admin service and runs the leader loops whenever
    /// this node leads (stopping them when it no longer does).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let worker = self.clone();
        let hook: ticketd_raft::service::ReconcileHook = Arc::new(move || {
            let worker = worker.clone();
            Box::pin(async move { worker.on_demand().await })
        });
        let _ = self.node.reconcile.set(hook);
        let worker = self.clone();
        tokio::spawn(async move {
            let mut running: Vec<tokio::task::JoinHandle<()>> = Vec::new();
            loop {
                let leader = worker.is_leader();
                if leader && running.is_empty() {
                    tracing::info!("leading: background worker started");
                    worker.dispatcher.forget_retries();
                    running = worker.spawn_loops();
                } else if !leader && !running.is_empty() {
                    tracing::info!("no longer leading: background worker stopped");
                    for task in running.drain(..) {
                        task.abort();
                    }
                }
                tokio::time::sleep(LEADER_POLL).await;
            }
        })
    }

    fn spawn_loops(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let worker = self.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(worker.config.expire_period).await;
                jobs::expiry::expire_holds(&worker.cluster).await;
                jobs::cancellation::continue_cancellations(&worker.cluster, &worker.node).await;
            }
        }));
        let worker = self.clone();
        tasks.push(tokio::spawn(async move { worker.digest_loop().await }));
        if self.reconciler.is_some() {
            let worker = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(worker.config.reconcile_period).await;
                    let Some(reconciler) = &worker.reconciler else {
                        return;
                    };
                    let report = reconciler.pass().await;
                    if !report.errors.is_empty() || !report.anomalies.is_empty() {
                        tracing::warn!(?report, "reconcile pass");
                    }
                }
            }));
        }
        if self.dispatcher.has_channels() {
            let worker = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(worker.config.dispatch_period).await;
                    let report = worker.dispatcher.pass(false).await;
                    if !report.errors.is_empty() {
                        tracing::warn!(?report, "dispatch pass");
                    }
                }
            }));
        }
        tasks
    }

    async fn digest_loop(&self) {
        let mut announced = 0u64;
        let mut last_digest = Instant::now();
        loop {
            tokio::time::sleep(DIGEST_POLL).await;
            let period = self.config.digest_period;
            if !period.is_zero() && last_digest.elapsed() >= period {
                last_digest = Instant::now();
                jobs::digest::propose_digest(&self.cluster, &self.node).await;
            }
            announced = jobs::digest::announce_digests(&self.cluster, &self.node, announced).await;
        }
    }

    /// `ticketctl reconcile`: one reconcile pass and one dispatch pass (parked notifications
    /// included), now; the reports as JSON.
    pub async fn on_demand(self: &Arc<Self>) -> Result<String, String> {
        if self.reconciler.is_none() && !self.dispatcher.has_channels() {
            return Err(
                "this node's worker has no payment provider, SMTP or SMS configured".into(),
            );
        }
        let reconcile = match &self.reconciler {
            Some(reconciler) => reconciler.pass().await,
            None => ticketd_money::reconciler::ReconcileReport {
                errors: vec!["no payment provider configured".into()],
                ..Default::default()
            },
        };
        let dispatch = self.dispatcher.pass(true).await;
        serde_json::to_string(&serde_json::json!({
            "node": self.node.id,
            "reconcile": reconcile,
            "dispatch": dispatch,
        }))
        .map_err(|e| e.to_string())
    }
}
