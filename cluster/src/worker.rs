//! The leader's background worker, run inside `ticketd node` while the node is the Raft leader:
//!
//! - **hold expiry**: proposes `ExpireHolds` periodically, so seats come back on an idle cluster
//!   too (every apply also expires what is due);
//! - **replica digests**: proposes `DigestState` every `digest_period`, and announces each digest
//!   this node computed in a `CheckDigest` entry, against which every replica compares its own
//!   (`ticketd_raft::digest`);
//! - **cancellations**: continues every dt the store shows as canceling with
//!   `ContinueCancelDt` entries (each releases or cancels a bounded number of rows) until it
//!   is canceled;
//! - **the reconciler** (periodic, and on demand through `ticketctl reconcile`): lists the
//!   payment provider's intents created since a look-back and heals every gap between them and
//!   the store;
//! - **the notification dispatcher**: sends what the store's outbox says is due (email over
//!   SMTP, SMS through the provider), refunds what `Refund` notifications owe, then records each
//!   one as sent.
//!
//! The one rule that keeps money and tickets together, for the API and the worker alike:
//! **capture only a payment the store confirmed; void only a payment the store failed or can
//! never start.** The store serializes every decision, so whoever acts second (the API, a
//! concurrent retry, the reconciler, a new leader's reconciler) reads the decision and follows
//! it. Every provider call is idempotent (capture, void, refund keyed by notification id), so
//! repeating an action after a crash or a leader change is harmless.
//!
//! What the reconciler does with each intent older than the grace period (younger ones are left
//! to the API's saga in flight), by provider status and the store's payment:
//!
//! | provider          | store payment            | action                                     |
//! |-------------------|--------------------------|--------------------------------------------|
//! | authorized        | confirmed (order exists) | capture                                    |
//! | authorized        | pending (hold pinned)    | complete: `ConfirmPurchase`, then capture  |
//! | authorized        | failed                   | void                                       |
//! | authorized        | unknown, hold not live   | void (the hold can never take it)          |
//! | authorized        | unknown, hold live       | fence (`StartPayment` + `PaymentFailed`), void |
//! | captured          | none / failed            | refund what is left (money without order)  |
//! | voided            | pending                  | `PaymentFailed` (unpins the hold)          |
//! | voided            | confirmed                | anomaly: reported, never "healed"          |
//!
//! An intent the store never heard of is voided rather than completed: the API may have told the
//! buyer "no" (a provider timeout is a nack), and a nack must never turn into tickets. The fence
//! first records the payment as failed in the store, so a late retry of the purchase cannot start
//! it after the void. A fence cut short by a crash (started, not yet failed) is recognized by
//! replaying its idempotency key, so it is finished rather than completed.
//!
//! Notifications are delivered at least once: a message is sent, then marked sent; a leader
//! change between the two sends it again with the same stable id (`Message-ID`
//! `<notification id@domain>`, SMS id = notification id), which receivers deduplicate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use ticketd_api::notify::{Email, HttpSms, SendError, Sms, SmtpMailer};
use ticketd_api::payments::{HttpProvider, Intent, IntentStatus, PaymentError, PaymentProvider};
use ticketd_raft::client::{ClientError, ClusterClient, Consistency, RetryPolicy};
use ticketd_raft::service::NodeCtx;
use ticketd_store::command::{Done, OrderView};
use ticketd_store::types::{
    HoldStatus, Notification, NotificationKind, Payment, PaymentStatus, TicketStatus, User,
};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

/// How often the worker looks for digests to announce.
const DIGEST_POLL: Duration = Duration::from_secs(1);
/// Dts whose cancellation one pass continues at most.
const CANCELING_DTS_PER_PASS_MAX: u32 = 16;
/// `ContinueCancelDt` entries one pass proposes per dt at most (each does up to
/// `CANCEL_ROWS_PER_ENTRY_MAX` rows); the next pass goes on.
const CANCEL_STEPS_PER_PASS_MAX: u32 = 1_000;

/// The worker's client id in the store's idempotency table.
pub const CLIENT_ID: &str = "ticketd-worker";
/// How often the worker looks at whether this node leads.
const LEADER_POLL: Duration = Duration::from_millis(200);
/// Intents per provider list call.
const PAGE_SIZE: u32 = 100;
/// Pages one reconcile pass reads at most (bounds a pass to 10,000 intents).
const PAGES_MAX: u32 = 100;
/// Longest the reconciler spends on one intent.
const INTENT_DEADLINE: Duration = Duration::from_secs(30);
/// Longest one whole reconcile pass may take.
const PASS_DEADLINE: Duration = Duration::from_secs(110);
/// Longest the dispatcher spends on one notification (refund, messages, mark).
const NOTIFY_DEADLINE: Duration = Duration::from_secs(30);
/// Pending notifications read per dispatch pass (the store's query cap).
const DUE_SCAN_MAX: u32 = 500;
/// Notifications delivered concurrently.
const SEND_CONCURRENCY: usize = 4;
/// First retry delay of a failed notification; doubles per attempt up to [`RETRY_DELAY_MAX`].
const RETRY_DELAY_FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(300);
/// Errors kept in a report.
const REPORT_ERRORS_MAX: usize = 20;
/// Intents remembered as settled before the memory is cleared.
const SETTLED_MAX: usize = 200_000;

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
    pub tls: ticketd_api::notify::SmtpTls,
}

/// What the worker talks to and how often it acts.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Payment provider (`host:port` or an `https://` URL, its secret key and CA); without it
    /// there is no reconciler and no refunds.
    pub payments: Option<ticketd_api::outbound::Outbound>,
    /// Deadline of one provider call.
    pub payments_timeout: Duration,
    /// SMTP relay; without it no email.
    pub smtp: Option<SmtpConfig>,
    /// SMS provider (as the payment provider); without it no SMS.
    pub sms: Option<ticketd_api::outbound::Outbound>,
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

/// What one reconcile pass found and did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReconcileReport {
    /// Intents listed.
    pub intents_seen: u32,
    /// Left alone: younger than the grace period.
    pub skipped_young: u32,
    /// Nothing (more) to do.
    pub settled: u32,
    /// Captured (an order without capture).
    pub captured: u32,
    /// Completed: the store turned the pinned hold into an order, then captured.
    pub completed: u32,
    /// Fenced in the store (started and failed), then voided.
    pub fenced: u32,
    /// Voided.
    pub voided: u32,
    /// Payments failed in the store because the provider voided them.
    pub failed_in_store: u32,
    /// Refunded: captured money without an order.
    pub refunded_orphans: u32,
    /// Contradictions that cannot be healed (e.g. an order whose payment is voided).
    pub anomalies: Vec<String>,
    /// What went wrong (retried next pass).
    pub errors: Vec<String>,
}

impl ReconcileReport {
    fn error(&mut self, e: String) {
        metrics::counter!("ticketd_worker_errors_total", "part" => "reconciler").increment(1);
        if self.errors.len() < REPORT_ERRORS_MAX {
            self.errors.push(e);
        }
    }
}

/// What one dispatch pass found and did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DispatchReport {
    /// Pending notifications due now (up to the scan cap).
    pub due: u32,
    /// Delivered and recorded as sent.
    pub sent: u32,
    /// Of those, refunds made at the provider.
    pub refunds: u32,
    /// Waiting for their retry time.
    pub deferred: u32,
    /// Failed this pass (retried later with backoff).
    pub failed: u32,
    /// Parked after too many attempts.
    pub parked: u32,
    /// What went wrong.
    pub errors: Vec<String>,
}

/// The worker of one node; acts only while the node leads.
pub struct Worker {
    ctx: NodeCtx,
    cfg: WorkerConfig,
    cluster: ClusterClient,
    provider: Option<HttpProvider>,
    mailer: Option<SmtpMailer>,
    sms: Option<HttpSms>,
    memory: Mutex<Memory>,
    reconcile_pass: tokio::sync::Mutex<()>,
    dispatch_pass: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Memory {
    /// Intents that need nothing more (terminal at the provider and in the store).
    settled: HashSet<String>,
    /// Notifications that failed: attempts and when to try again.
    retries: HashMap<String, Retry>,
}

struct Retry {
    attempts: u32,
    next_at: Instant,
}

enum Fate {
    /// Nothing more to do for this intent.
    Settled,
    /// Look again next pass.
    Later,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn pe(e: PaymentError) -> String {
    e.to_string()
}

impl Worker {
    /// A worker for the node `ctx`.
    pub fn new(ctx: NodeCtx, cfg: WorkerConfig) -> anyhow::Result<Arc<Self>> {
        let provider = match &cfg.payments {
            Some(a) => Some(
                HttpProvider::new(a, cfg.payments_timeout)
                    .map_err(|e| anyhow::anyhow!("payment provider: {e}"))?,
            ),
            None => None,
        };
        let mailer = match &cfg.smtp {
            Some(s) => Some(
                SmtpMailer::new(&s.host, s.port, &s.from, Duration::from_secs(10), &s.tls)
                    .map_err(|e| anyhow::anyhow!("SMTP relay: {e}"))?,
            ),
            None => None,
        };
        let sms = match &cfg.sms {
            Some(a) => Some(
                HttpSms::new(a, Duration::from_secs(5))
                    .map_err(|e| anyhow::anyhow!("SMS provider: {e}"))?,
            ),
            None => None,
        };
        // Writes go to this node (the leader while the worker acts), as this node; hints are
        // followed.
        let cluster = ClusterClient::new(
            vec![ctx.addr.clone()],
            RetryPolicy {
                attempts_max: 6,
                attempt_timeout: Duration::from_secs(3),
                total_deadline: Duration::from_secs(8),
                backoff: Duration::from_millis(50),
            },
            ctx.channels.transport().clone(),
        );
        Ok(Arc::new(Self {
            ctx,
            cfg,
            cluster,
            provider,
            mailer,
            sms,
            memory: Mutex::default(),
            reconcile_pass: tokio::sync::Mutex::new(()),
            dispatch_pass: tokio::sync::Mutex::new(()),
        }))
    }

    fn is_leader(&self) -> bool {
        self.ctx.leader().is_some_and(|(id, _)| id == self.ctx.id)
    }

    /// Registers `ticketctl reconcile` with the admin service and runs the leader loops whenever
    /// this node leads (stopping them when it no longer does).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let w = self.clone();
        let hook: ticketd_raft::service::ReconcileHook = Arc::new(move || {
            let w = w.clone();
            Box::pin(async move { w.on_demand().await })
        });
        let _ = self.ctx.reconcile.set(hook);
        let w = self.clone();
        tokio::spawn(async move {
            let mut running: Vec<tokio::task::JoinHandle<()>> = Vec::new();
            loop {
                let leader = w.is_leader();
                if leader && running.is_empty() {
                    tracing::info!("leading: background worker started");
                    w.memory.lock().expect("memory lock").retries.clear();
                    running = w.spawn_loops();
                } else if !leader && !running.is_empty() {
                    tracing::info!("no longer leading: background worker stopped");
                    for t in running.drain(..) {
                        t.abort();
                    }
                }
                tokio::time::sleep(LEADER_POLL).await;
            }
        })
    }

    fn spawn_loops(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let w = self.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(w.cfg.expire_period).await;
                w.expire_holds().await;
                w.continue_cancellations().await;
            }
        }));
        let w = self.clone();
        tasks.push(tokio::spawn(async move {
            let mut announced = 0u64;
            let mut last_digest = Instant::now();
            loop {
                tokio::time::sleep(DIGEST_POLL).await;
                let period = w.cfg.digest_period;
                if !period.is_zero() && last_digest.elapsed() >= period {
                    last_digest = Instant::now();
                    w.propose_digest().await;
                }
                announced = w.announce_digests(announced).await;
            }
        }));
        if self.provider.is_some() {
            let w = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(w.cfg.reconcile_period).await;
                    let r = w.reconcile().await;
                    if !r.errors.is_empty() || !r.anomalies.is_empty() {
                        tracing::warn!(report = ?r, "reconcile pass");
                    }
                }
            }));
        }
        if self.dispatches() {
            let w = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(w.cfg.dispatch_period).await;
                    let r = w.dispatch(false).await;
                    if !r.errors.is_empty() {
                        tracing::warn!(report = ?r, "dispatch pass");
                    }
                }
            }));
        }
        tasks
    }

    fn dispatches(&self) -> bool {
        self.provider.is_some() || self.mailer.is_some() || self.sms.is_some()
    }

    /// `ticketctl reconcile`: one reconcile pass and one dispatch pass (parked notifications
    /// included), now; the reports as JSON.
    pub async fn on_demand(self: &Arc<Self>) -> Result<String, String> {
        if self.provider.is_none() && !self.dispatches() {
            return Err(
                "this node's worker has no payment provider, SMTP or SMS configured".into(),
            );
        }
        let reconcile = self.reconcile().await;
        let dispatch = self.dispatch(true).await;
        serde_json::to_string(&serde_json::json!({
            "node": self.ctx.id,
            "reconcile": reconcile,
            "dispatch": dispatch,
        }))
        .map_err(|e| e.to_string())
    }

    async fn expire_holds(&self) {
        let now = now_ms();
        let cmd = Command::ExpireHolds { up_to_ms: now };
        match self
            .cluster
            .write(CLIENT_ID, &format!("expire:{now}"), &cmd)
            .await
        {
            Ok(w) => {
                if let Outcome::Done(Done::HoldsExpired { count }) = w.reply.outcome {
                    if count > 0 {
                        tracing::info!(count, "holds expired");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "ExpireHolds not proposed"),
        }
    }

    async fn propose_digest(&self) {
        let key = format!("digest:{}:{}", self.ctx.id, now_ms());
        match self.write(&key, &Command::DigestState {}).await {
            Ok(_) => tracing::debug!("replica digest proposed"),
            Err(e) => tracing::debug!(error = %e, "replica digest not proposed"),
        }
    }

    /// Announces this node's digests computed at indexes above `announced`; returns the
    /// newest index announced.
    async fn announce_digests(&self, mut announced: u64) -> u64 {
        for (index, digest) in self.ctx.sm.digests().computed_after(announced) {
            let cmd = Command::CheckDigest {
                index,
                digest: digest.clone(),
            };
            match self.write(&format!("check-digest:{index}"), &cmd).await {
                Ok(_) => announced = index,
                Err(e) => {
                    tracing::debug!(index, error = %e, "digest not announced");
                    break;
                }
            }
        }
        announced
    }

    /// Proposes the next steps of every dt the store shows as canceling, until each is
    /// canceled or the pass's bound is reached.
    async fn continue_cancellations(&self) {
        let q = Query::CancelingDts {
            limit: CANCELING_DTS_PER_PASS_MAX,
        };
        let dts = match self.read(q, Consistency::Local).await {
            Ok(QueryResult::Dts(dts)) => dts,
            Ok(other) => {
                tracing::warn!(answer = ?other, "unexpected answer to CancelingDts");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "canceling dts not read");
                return;
            }
        };
        for dt in dts {
            for step in 0..CANCEL_STEPS_PER_PASS_MAX {
                let cmd = Command::ContinueCancelDt {
                    dt_id: dt.dt_id.clone(),
                };
                let key = format!("cancel:{}:{}:{step}", dt.dt_id, now_ms());
                match self.write(&key, &cmd).await {
                    Ok((
                        Outcome::Done(Done::DtCanceled {
                            holds_released,
                            orders_canceled,
                            ..
                        }),
                        _,
                    )) => {
                        let rows = holds_released.saturating_add(orders_canceled);
                        if (rows as usize) < ticketd_store::limits::CANCEL_ROWS_PER_ENTRY_MAX {
                            tracing::info!(dt = %dt.dt_id, "dt canceled");
                            break;
                        }
                    }
                    Ok((outcome, _)) => {
                        tracing::debug!(dt = %dt.dt_id, ?outcome, "cancellation not continued");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(dt = %dt.dt_id, error = %e, "cancellation step not proposed");
                        return;
                    }
                }
            }
        }
    }

    // --- the store -----------------------------------------------------------------------

    /// A read of the store. A local one is answered by this node's state machine in process:
    /// the node's gRPC answers leave secrets out for every caller but the API, and the
    /// dispatcher needs tickets' code secrets for the e-tickets it mails.
    async fn read(&self, q: Query, c: Consistency) -> Result<QueryResult, String> {
        if c == Consistency::Local {
            return Ok(self.ctx.sm.query(&q).0);
        }
        self.cluster
            .read(&q, c)
            .await
            .map(|r| r.result)
            .map_err(|e| format!("read {q:?}: {e}"))
    }

    /// A write's outcome and whether it was a replay of an earlier one with the same key; an
    /// unknown outcome is an error (the next pass looks again).
    async fn write(&self, key: &str, cmd: &Command) -> Result<(Outcome, bool), String> {
        match self.cluster.write(CLIENT_ID, key, cmd).await {
            Ok(w) => Ok((w.reply.outcome, w.reply.replayed)),
            Err(ClientError::Unknown(e)) => Err(format!("outcome unknown: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn payment(&self, payment_ref: &str) -> Result<Option<Payment>, String> {
        let q = Query::GetPayment {
            payment_ref: payment_ref.to_string(),
        };
        match self.read(q, Consistency::Linearizable).await? {
            QueryResult::Payment(p) => Ok(p),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    // --- the reconciler ------------------------------------------------------------------

    /// One reconcile pass over the intents created in the look-back, within its deadline.
    pub async fn reconcile(&self) -> ReconcileReport {
        let _one = self.reconcile_pass.lock().await;
        let mut rep = ReconcileReport::default();
        if tokio::time::timeout(PASS_DEADLINE, self.reconcile_pages(&mut rep))
            .await
            .is_err()
        {
            rep.error("the pass ran out of time; the next one goes on".into());
        }
        for (what, n) in [
            ("captured", rep.captured),
            ("completed", rep.completed),
            ("fenced", rep.fenced),
            ("voided", rep.voided),
            ("failed_in_store", rep.failed_in_store),
            ("refunded_orphan", rep.refunded_orphans),
        ] {
            metrics::counter!("ticketd_reconcile_actions_total", "action" => what)
                .increment(u64::from(n));
        }
        metrics::counter!("ticketd_reconcile_anomalies_total")
            .increment(rep.anomalies.len() as u64);
        rep
    }

    async fn reconcile_pages(&self, rep: &mut ReconcileReport) {
        let Some(provider) = &self.provider else {
            rep.error("no payment provider configured".into());
            return;
        };
        let now = now_ms();
        let since = now - self.cfg.reconcile_lookback.as_millis() as i64;
        let young = now - self.cfg.reconcile_grace.as_millis() as i64;
        let mut after: Option<String> = None;
        for _ in 0..PAGES_MAX {
            let page = match provider
                .list_created_since(since, after.as_deref(), PAGE_SIZE)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    rep.error(format!("listing intents: {e}"));
                    return;
                }
            };
            for intent in &page.data {
                rep.intents_seen += 1;
                if self
                    .memory
                    .lock()
                    .expect("memory lock")
                    .settled
                    .contains(&intent.id)
                {
                    rep.settled += 1;
                    continue;
                }
                if intent.created_ms > young {
                    rep.skipped_young += 1;
                    continue;
                }
                let fate = tokio::time::timeout(
                    INTENT_DEADLINE,
                    self.reconcile_intent(provider, intent, rep),
                )
                .await;
                match fate {
                    Ok(Ok(Fate::Settled)) => {
                        rep.settled += 1;
                        let mut m = self.memory.lock().expect("memory lock");
                        if m.settled.len() >= SETTLED_MAX {
                            m.settled.clear();
                        }
                        m.settled.insert(intent.id.clone());
                    }
                    Ok(Ok(Fate::Later)) => {}
                    Ok(Err(e)) => rep.error(format!("{}: {e}", intent.id)),
                    Err(_) => rep.error(format!("{}: ran out of time", intent.id)),
                }
            }
            after = page.data.last().map(|i| i.id.clone());
            if !page.has_more || after.is_none() {
                return;
            }
        }
    }

    async fn reconcile_intent(
        &self,
        provider: &HttpProvider,
        i: &Intent,
        rep: &mut ReconcileReport,
    ) -> Result<Fate, String> {
        let payment = self.payment(&i.id).await?;
        let status = payment.as_ref().map(|p| p.status.clone());
        match (i.status, status) {
            (IntentStatus::RequiresCapture, Some(PaymentStatus::Confirmed { order_id })) => {
                provider.capture(&i.id).await.map_err(pe)?;
                tracing::info!(payment = %i.id, order = %order_id, "reconciler captured");
                rep.captured += 1;
                Ok(Fate::Settled)
            }
            (IntentStatus::RequiresCapture, Some(PaymentStatus::Pending)) => {
                let p = payment.expect("pending payment");
                self.complete(provider, i, &p, rep).await
            }
            (IntentStatus::RequiresCapture, Some(PaymentStatus::Failed { .. })) => {
                provider.cancel(&i.id).await.map_err(pe)?;
                tracing::info!(payment = %i.id, "reconciler voided a failed payment");
                rep.voided += 1;
                Ok(Fate::Settled)
            }
            (IntentStatus::RequiresCapture, None) => self.fence_and_void(provider, i, rep).await,
            (
                IntentStatus::Succeeded | IntentStatus::Refunded,
                Some(PaymentStatus::Confirmed { .. }),
            ) => {
                // Refunds owed are in the outbox: the dispatcher makes them.
                Ok(Fate::Settled)
            }
            (IntentStatus::Succeeded, _) => {
                let left = i.net_captured();
                if left > 0 {
                    provider
                        .refund(&i.id, left, &format!("orphan:{}", i.id))
                        .await
                        .map_err(pe)?;
                }
                rep.anomalies.push(format!(
                    "{} was captured without an order; refunded {left}",
                    i.id
                ));
                rep.refunded_orphans += 1;
                Ok(Fate::Settled)
            }
            (IntentStatus::Refunded, _) => Ok(Fate::Settled),
            (IntentStatus::Canceled, Some(PaymentStatus::Pending)) => {
                let p = payment.expect("pending payment");
                let cmd = Command::PaymentFailed {
                    hold_id: p.hold_id.clone(),
                    payment_ref: i.id.clone(),
                    reason: "voided at the provider".into(),
                };
                match self
                    .write(&format!("reconcile:voided:{}", i.id), &cmd)
                    .await?
                {
                    (Outcome::Done(_), _) => {
                        rep.failed_in_store += 1;
                        Ok(Fate::Settled)
                    }
                    (Outcome::Rejected { .. }, _) => Ok(Fate::Later),
                }
            }
            (IntentStatus::Canceled, Some(PaymentStatus::Confirmed { order_id })) => {
                tracing::error!(payment = %i.id, order = %order_id, "an order's payment is voided");
                rep.anomalies
                    .push(format!("order {order_id} has a voided payment {}", i.id));
                Ok(Fate::Later)
            }
            (IntentStatus::Canceled, _) => Ok(Fate::Settled),
        }
    }

    /// The fence's first command for intent `i` on a hold of `user_id`: deterministic, so its
    /// idempotency key replays it (and so tells a fence cut short from a buyer's payment).
    fn fence_start(i: &Intent, hold_id: &str, user_id: &str) -> (String, Command) {
        (
            format!("reconcile:fence-start:{}", i.id),
            Command::StartPayment {
                hold_id: hold_id.to_string(),
                user_id: user_id.to_string(),
                payment_ref: i.id.clone(),
                amount_minor: i.amount,
                currency: i.currency.clone(),
            },
        )
    }

    /// Fails a pending payment in the store, then voids it at the provider.
    async fn fail_then_void(
        &self,
        provider: &HttpProvider,
        i: &Intent,
        hold_id: &str,
        reason: &str,
    ) -> Result<bool, String> {
        let cmd = Command::PaymentFailed {
            hold_id: hold_id.to_string(),
            payment_ref: i.id.clone(),
            reason: reason.to_string(),
        };
        match self
            .write(&format!("reconcile:fence-fail:{}", i.id), &cmd)
            .await?
        {
            (Outcome::Done(_), _) => {
                provider.cancel(&i.id).await.map_err(pe)?;
                Ok(true)
            }
            // Confirmed meanwhile (the buyer's saga won): the next pass captures.
            (Outcome::Rejected { .. }, _) => Ok(false),
        }
    }

    /// Authorized, and the store pinned the hold with it: complete the purchase (unless the
    /// payment was started by a fence cut short), then capture.
    async fn complete(
        &self,
        provider: &HttpProvider,
        i: &Intent,
        p: &Payment,
        rep: &mut ReconcileReport,
    ) -> Result<Fate, String> {
        let (key, start) = Self::fence_start(i, &p.hold_id, &p.user_id);
        if let (Outcome::Done(_), _) = self.write(&key, &start).await? {
            // The fence's own start, replayed: finish the fence.
            if self
                .fail_then_void(
                    provider,
                    i,
                    &p.hold_id,
                    "abandoned before the store heard of it",
                )
                .await?
            {
                rep.fenced += 1;
                return Ok(Fate::Settled);
            }
            return Ok(Fate::Later);
        }
        if i.amount != p.amount_minor || i.currency != p.currency {
            let why = format!(
                "authorized {} {} for a payment of {} {}",
                i.amount, i.currency, p.amount_minor, p.currency
            );
            rep.anomalies.push(format!("{}: {why}", i.id));
            return Ok(
                if self.fail_then_void(provider, i, &p.hold_id, &why).await? {
                    rep.voided += 1;
                    Fate::Settled
                } else {
                    Fate::Later
                },
            );
        }
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let seed: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect();
        let confirm = Command::ConfirmPurchase {
            hold_id: p.hold_id.clone(),
            order_id: format!("o-{attempt}"),
            payment_ref: i.id.clone(),
            amount_minor: p.amount_minor,
            currency: p.currency.clone(),
            secret_seed: seed,
        };
        let key = format!("reconcile:confirm:{}:{attempt}", i.id);
        match self.write(&key, &confirm).await? {
            (Outcome::Done(Done::PurchaseConfirmed { order_id, .. }), _) => {
                provider.capture(&i.id).await.map_err(pe)?;
                tracing::info!(payment = %i.id, order = %order_id, "reconciler completed a purchase");
                rep.completed += 1;
                Ok(Fate::Settled)
            }
            (outcome, _) => {
                // Someone else decided first: follow the store.
                match self.payment(&i.id).await?.map(|p| p.status) {
                    Some(PaymentStatus::Confirmed { .. }) => {
                        provider.capture(&i.id).await.map_err(pe)?;
                        rep.captured += 1;
                        Ok(Fate::Settled)
                    }
                    Some(PaymentStatus::Failed { .. }) => {
                        provider.cancel(&i.id).await.map_err(pe)?;
                        rep.voided += 1;
                        Ok(Fate::Settled)
                    }
                    _ => Err(format!("completing: {outcome:?}")),
                }
            }
        }
    }

    /// Authorized, unknown to the store: void it, after making sure the store can never start
    /// it (its hold is over, or the fence records it as failed).
    async fn fence_and_void(
        &self,
        provider: &HttpProvider,
        i: &Intent,
        rep: &mut ReconcileReport,
    ) -> Result<Fate, String> {
        let Some(hold_id) = i.metadata.get("hold_id") else {
            rep.anomalies
                .push(format!("{} names no hold; left alone", i.id));
            return Ok(Fate::Settled);
        };
        let q = Query::GetHold {
            hold_id: hold_id.clone(),
        };
        let hold = match self.read(q, Consistency::Linearizable).await? {
            QueryResult::Hold(h) => h,
            other => return Err(format!("unexpected answer {other:?}")),
        };
        let Some(hold) = hold.filter(|h| h.status == HoldStatus::Live) else {
            // No live hold: nothing can start this payment any more.
            provider.cancel(&i.id).await.map_err(pe)?;
            tracing::info!(payment = %i.id, hold = %hold_id, "reconciler voided an abandoned authorization");
            rep.voided += 1;
            return Ok(Fate::Settled);
        };
        let (key, start) = Self::fence_start(i, &hold.hold_id, &hold.user_id);
        match self.write(&key, &start).await? {
            (Outcome::Done(_), _) => {
                if self
                    .fail_then_void(
                        provider,
                        i,
                        &hold.hold_id,
                        "abandoned before the store heard of it",
                    )
                    .await?
                {
                    tracing::info!(payment = %i.id, hold = %hold_id, "reconciler fenced and voided an abandoned authorization");
                    rep.fenced += 1;
                    return Ok(Fate::Settled);
                }
                Ok(Fate::Later)
            }
            (Outcome::Rejected { code, .. }, _) => match code {
                // Refused for good: this hold never takes this payment.
                Rejection::HoldExpired
                | Rejection::HoldNotLive
                | Rejection::NotFound
                | Rejection::NotOwner
                | Rejection::AmountMismatch
                | Rejection::InvalidArgument
                | Rejection::PaymentAttemptsExceeded => {
                    provider.cancel(&i.id).await.map_err(pe)?;
                    rep.voided += 1;
                    Ok(Fate::Settled)
                }
                // The payment appeared meanwhile, or another one is in flight: look again.
                _ => Ok(Fate::Later),
            },
        }
    }

    // --- the dispatcher ------------------------------------------------------------------

    /// One dispatch pass: the due notifications not waiting for a retry, up to the batch, a few
    /// at a time, each within its deadline. `include_parked` gives parked ones another try.
    pub async fn dispatch(self: &Arc<Self>, include_parked: bool) -> DispatchReport {
        let _one = self.dispatch_pass.lock().await;
        let mut rep = DispatchReport::default();
        let q = Query::DueNotifications {
            up_to_ms: now_ms(),
            limit: DUE_SCAN_MAX,
        };
        let due = match self.read(q, Consistency::Linearizable).await {
            Ok(QueryResult::Notifications(n)) => n,
            Ok(other) => {
                rep.errors.push(format!("unexpected answer {other:?}"));
                return rep;
            }
            Err(e) => {
                rep.errors.push(e);
                return rep;
            }
        };
        rep.due = due.len() as u32;
        let picked: Vec<Notification> = {
            let mut m = self.memory.lock().expect("memory lock");
            let ids: HashSet<&str> = due.iter().map(|n| n.notification_id.as_str()).collect();
            m.retries.retain(|id, _| ids.contains(id.as_str()));
            let now = Instant::now();
            let max = self.cfg.send_attempts_max;
            due.iter()
                .filter(|n| self.can_deliver(&n.kind))
                .filter(|n| match m.retries.get_mut(&n.notification_id) {
                    None => true,
                    Some(r) if r.attempts >= max => {
                        if include_parked {
                            r.attempts = max - 1;
                            true
                        } else {
                            rep.parked += 1;
                            false
                        }
                    }
                    Some(r) if r.next_at > now && !include_parked => {
                        rep.deferred += 1;
                        false
                    }
                    Some(_) => true,
                })
                .take(self.cfg.dispatch_batch)
                .cloned()
                .collect()
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(SEND_CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for n in picked {
            let w = self.clone();
            let slots = slots.clone();
            set.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let r = tokio::time::timeout(NOTIFY_DEADLINE, w.deliver(&n))
                    .await
                    .unwrap_or_else(|_| Err("ran out of time".into()));
                (n, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((n, r)) = joined else { continue };
            let kind = kind_name(&n.kind);
            match r {
                Ok(()) => {
                    rep.sent += 1;
                    if matches!(n.kind, NotificationKind::Refund { .. }) {
                        rep.refunds += 1;
                    }
                    metrics::counter!("ticketd_notifications_dispatched_total", "kind" => kind)
                        .increment(1);
                    self.memory
                        .lock()
                        .expect("memory lock")
                        .retries
                        .remove(&n.notification_id);
                }
                Err(e) => {
                    rep.failed += 1;
                    metrics::counter!("ticketd_worker_errors_total", "part" => "dispatcher")
                        .increment(1);
                    tracing::warn!(notification = %n.notification_id, kind, error = %e, "delivery failed; retried later");
                    if rep.errors.len() < REPORT_ERRORS_MAX {
                        rep.errors.push(format!("{}: {e}", n.notification_id));
                    }
                    let mut m = self.memory.lock().expect("memory lock");
                    let r = m.retries.entry(n.notification_id.clone()).or_insert(Retry {
                        attempts: 0,
                        next_at: Instant::now(),
                    });
                    r.attempts += 1;
                    let delay = RETRY_DELAY_FIRST
                        .saturating_mul(1 << r.attempts.min(16).saturating_sub(1))
                        .min(RETRY_DELAY_MAX);
                    r.next_at = Instant::now() + delay;
                }
            }
        }
        rep
    }

    fn can_deliver(&self, kind: &NotificationKind) -> bool {
        match kind {
            NotificationKind::Refund { .. } => self.provider.is_some(),
            _ => self.mailer.is_some() || self.sms.is_some(),
        }
    }

    /// Delivers one notification (refunding first for a refund), then records it as sent.
    async fn deliver(&self, n: &Notification) -> Result<(), String> {
        let user = match self
            .read(
                Query::GetUser {
                    user_id: n.user_id.clone(),
                },
                Consistency::Local,
            )
            .await?
        {
            QueryResult::User(u) => u,
            other => return Err(format!("unexpected answer {other:?}")),
        };
        let order = match self
            .read(
                Query::GetOrder {
                    order_id: n.order_id.clone(),
                },
                Consistency::Local,
            )
            .await?
        {
            QueryResult::Order(Some(o)) => o,
            QueryResult::Order(None) => return Err(format!("no order {}", n.order_id)),
            other => return Err(format!("unexpected answer {other:?}")),
        };
        let mut channels = Vec::new();
        if let NotificationKind::Refund { amount_minor, .. } = &n.kind {
            self.refund(&order.order.payment_ref, *amount_minor, &n.notification_id)
                .await?;
            channels.push("provider");
        }
        let title = self.event_title(&order).await;
        let msg = self.message(n, &order, &title).await?;
        if self.mailer.is_some() || self.sms.is_some() {
            match user {
                Some(u) => channels.extend(self.send(&u, &n.notification_id, msg).await?),
                None => tracing::warn!(user = %n.user_id, "notification for an unknown user"),
            }
        }
        let channel = if channels.is_empty() {
            "undeliverable".to_string()
        } else {
            channels.join("+")
        };
        let cmd = Command::MarkNotificationSent {
            notification_id: n.notification_id.clone(),
            channel,
        };
        match self
            .write(&format!("sent:{}", n.notification_id), &cmd)
            .await?
        {
            (Outcome::Done(_), _) => Ok(()),
            // Voided meanwhile (a reminder of a canceled order): nothing more to do.
            (
                Outcome::Rejected {
                    code: Rejection::InvalidState,
                    ..
                },
                _,
            ) => Ok(()),
            (Outcome::Rejected { code, detail }, _) => Err(format!("{}: {detail}", code.code())),
        }
    }

    /// Refunds `amount` of a payment, keyed by the notification, so it happens once. A payment
    /// an order confirmed but nobody captured yet is captured first: the order owes it.
    async fn refund(&self, payment_ref: &str, amount: i64, key: &str) -> Result<(), String> {
        let provider = self.provider.as_ref().ok_or("no payment provider")?;
        let i = provider.retrieve(payment_ref).await.map_err(pe)?;
        if i.status == IntentStatus::RequiresCapture {
            provider.capture(payment_ref).await.map_err(pe)?;
        }
        provider
            .refund(payment_ref, amount, key)
            .await
            .map_err(pe)?;
        tracing::info!(payment = %payment_ref, amount, key, "refunded");
        Ok(())
    }

    async fn event_title(&self, order: &OrderView) -> String {
        let q = Query::GetEvent {
            event_id: order.order.event_id.clone(),
        };
        match self.read(q, Consistency::Local).await {
            Ok(QueryResult::Event(Some(e))) => e.title,
            _ => order.order.event_id.clone(),
        }
    }

    async fn message(
        &self,
        n: &Notification,
        order: &OrderView,
        title: &str,
    ) -> Result<Message, String> {
        let o = &order.order;
        let money = |m: i64| format!("{}.{:02} {}", m / 100, (m % 100).abs(), o.currency);
        let seats: Vec<&str> = order
            .tickets
            .iter()
            .map(|t| t.seat_label.as_str())
            .collect();
        Ok(match &n.kind {
            NotificationKind::Confirmation => Message {
                subject: format!("Order {} confirmed: {title}", o.order_id),
                text: format!(
                    "Thank you. Order {} for {title} is confirmed: {} ticket(s) ({}), {} paid. Your e-tickets follow.",
                    o.order_id,
                    o.ticket_ids.len(),
                    seats.join(", "),
                    money(o.total_minor)
                ),
                qrs: Vec::new(),
                email_only: false,
            },
            NotificationKind::ETickets => {
                let now_s = (now_ms() / 1000).max(0) as u64;
                let mut qrs = Vec::new();
                for t in order.tickets.iter().filter(|t| t.status == TicketStatus::Valid) {
                    let (code, _) = ticketd_api::tickets::current_code(&t.secret, now_s);
                    let payload = ticketd_api::tickets::qr_payload(&t.ticket_id, &code);
                    let svg = ticketd_api::tickets::qr_svg(&payload)
                        .map_err(|e| format!("QR of {}: {e}", t.ticket_id))?;
                    qrs.push((format!("{}.svg", t.ticket_id), svg));
                }
                Message {
                    subject: format!("Your e-tickets: {title}"),
                    text: format!(
                        "Your e-tickets for {title}, order {}: {} ticket(s) ({}). Each attached QR code names its ticket; at the gate show the ticket in the app, whose code changes every {} s (a copy of an old code is refused).",
                        o.order_id,
                        qrs.len(),
                        seats.join(", "),
                        ticketd_api::tickets::CODE_STEP_S
                    ),
                    qrs,
                    email_only: true,
                }
            }
            NotificationKind::Reminder => {
                let starts = match self
                    .read(
                        Query::GetDt {
                            dt_id: o.dt_id.clone(),
                        },
                        Consistency::Local,
                    )
                    .await
                {
                    Ok(QueryResult::Dt(Some(d))) => utc(d.starts_at_ms),
                    _ => "soon".into(),
                };
                Message {
                    subject: format!("Reminder: {title} starts {starts}"),
                    text: format!(
                        "{title} starts {starts}. Your tickets: {} (order {}).",
                        seats.join(", "),
                        o.order_id
                    ),
                    qrs: Vec::new(),
                    email_only: false,
                }
            }
            NotificationKind::Cancellation => Message {
                subject: format!("Order {} canceled: {title}", o.order_id),
                text: format!(
                    "Order {} for {title} is canceled; any money owed goes back to your payment method.",
                    o.order_id
                ),
                qrs: Vec::new(),
                email_only: false,
            },
            NotificationKind::Refund {
                amount_minor,
                ticket_ids,
            } => Message {
                subject: format!("Refund of {} for {title}", money(*amount_minor)),
                text: format!(
                    "{} was refunded to your payment method for {} ticket(s) of order {}.",
                    money(*amount_minor),
                    ticket_ids.len(),
                    o.order_id
                ),
                qrs: Vec::new(),
                email_only: false,
            },
        })
    }

    /// Sends `msg` by the user's preference (SMS when chosen and a phone is known, email when
    /// chosen or when no SMS goes); the channels used.
    async fn send(&self, u: &User, id: &str, msg: Message) -> Result<Vec<&'static str>, String> {
        let phone = u.contact.phone.trim();
        let email = u.contact.email.trim();
        let by_sms = !msg.email_only && u.reminder.sms && !phone.is_empty() && self.sms.is_some();
        let by_email = !email.is_empty()
            && self.mailer.is_some()
            && (u.reminder.email || msg.email_only || !by_sms);
        // E-tickets without an email address: an SMS pointing to the app.
        let by_sms =
            by_sms || (msg.email_only && !by_email && !phone.is_empty() && self.sms.is_some());
        let mut used = Vec::new();
        if by_email {
            let mailer = self.mailer.as_ref().expect("checked");
            let e = Email {
                id: id.to_string(),
                to: email.to_string(),
                subject: msg.subject.clone(),
                text: msg.text.clone(),
                svg_attachments: msg.qrs.clone(),
            };
            match mailer.send(&e).await {
                Ok(()) => used.push("email"),
                // A bad address never gets better: do not retry it forever.
                Err(SendError::Invalid(d)) => {
                    tracing::warn!(notification = id, error = %d, "email undeliverable")
                }
                Err(SendError::Transient(d)) => return Err(format!("email: {d}")),
            }
        }
        if by_sms {
            let sms = self.sms.as_ref().expect("checked");
            let text = if msg.email_only {
                format!("{} Open the ticketd app to show them.", msg.subject)
            } else {
                msg.text.clone()
            };
            let m = Sms {
                id: id.to_string(),
                to: phone.to_string(),
                text,
            };
            match sms.send(&m).await {
                Ok(()) => used.push("sms"),
                Err(SendError::Invalid(d)) => {
                    tracing::warn!(notification = id, error = %d, "SMS undeliverable")
                }
                Err(SendError::Transient(d)) => return Err(format!("SMS: {d}")),
            }
        }
        Ok(used)
    }
}

/// A message before it is addressed.
struct Message {
    subject: String,
    text: String,
    /// QR codes to attach: (file name, SVG).
    qrs: Vec<(String, String)>,
    /// Only email can carry it (e-tickets with their QR codes).
    email_only: bool,
}

fn kind_name(k: &NotificationKind) -> &'static str {
    match k {
        NotificationKind::Confirmation => "confirmation",
        NotificationKind::ETickets => "etickets",
        NotificationKind::Reminder => "reminder",
        NotificationKind::Cancellation => "cancellation",
        NotificationKind::Refund { .. } => "refund",
    }
}

/// `YYYY-MM-DD HH:MM UTC` of Unix ms (proleptic Gregorian, days-from-civil inverted).
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_ms() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_893_456_000_000), "2030-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000 + 3_661_000), "2000-02-29 01:01 UTC");
    }
}
