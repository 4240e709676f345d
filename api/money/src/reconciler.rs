//! The reconciler, run by the leader (periodically, and on demand through `ticketctl
//! reconcile`): visits the payment provider's intents and heals every gap between them and the
//! store, by the same rule as the saga ([`decide`]).
//!
//! Which intents a pass visits (from cluster version 2 on):
//! - the new ones, in the provider's creation order, from the store's cursor ([`CURSOR`]):
//!   each page's intents past the grace period are walked, then the cursor moves past them in
//!   one entry (`AdvanceCursor`) that also adds those not settled to the store's set of
//!   unfinished payments; a new leader goes on from where the cursor stands;
//! - the store's unfinished payments (every `StartPayment` adds one), each looked up at the
//!   provider, so an old intent whose state changes is still seen; those settled leave the set
//!   (`PaymentsSettled`).
//!
//! Both walks are bounded per pass ([`PAGES_MAX`] pages each) and go on the next pass. Before
//! version 2 (a rolling upgrade not yet raised) a pass lists the look-back, oldest first.
//!
//! For each intent older than the grace period (younger ones are left to the API's saga in
//! flight) it observes the store's payment and whether the hold can still take it, asks
//! [`decide`], acts, and asks again until the answer is [`Action::Settled`]:
//! - an intent the store never heard of is voided rather than completed: the API may have told
//!   the buyer "no" (a provider timeout is a nack), and a nack must never turn into tickets;
//!   while its hold is live the reconciler first fences it (`StartPayment` under its own key,
//!   then `PaymentFailed`), so a late retry of the purchase cannot start it after the void;
//! - a fence cut short by a crash (started, not yet failed) is recognized by replaying its
//!   idempotency key, so it is finished rather than completed.
//!
//! Every provider call is idempotent (capture, void, refund keyed), so repeating an action after
//! a crash or a leader change is harmless.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use ticketd_raft::client::{ClusterClient, Consistency};
use ticketd_raft::version::ClusterVersion;
use ticketd_store::command::Done;
use ticketd_store::types::{HoldStatus, Payment, PaymentStatus, ReconcileCursor};
use ticketd_store::version::PAYMENTS_IN_STORE;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::decide::{decide, Action, FailReason, HoldView};
use crate::provider::{HttpProvider, Intent, PaymentProvider};
use crate::store::{self, LEADER_CLIENT_ID};

/// The store's cursor over the provider's intents (one per Raft group once events are sharded
/// over several).
pub const CURSOR: &str = "payments";
/// Intents per provider list call, and unfinished payments per store read.
pub const PAGE_SIZE: u32 = 100;
/// Pages each walk of a pass reads at most (10,000 new intents and 10,000 unfinished ones).
pub const PAGES_MAX: u32 = 100;
/// Intents of one page walked at once.
const WALK_CONCURRENCY: usize = 8;
/// Longest the reconciler spends on one intent.
const INTENT_DEADLINE: Duration = Duration::from_secs(30);
/// Longest one whole reconcile pass may take.
const PASS_DEADLINE: Duration = Duration::from_secs(110);
/// Steps (decide, act) one intent takes in a pass at most; the next pass goes on.
const STEPS_PER_INTENT_MAX: usize = 8;
/// Errors kept in a report.
const REPORT_ERRORS_MAX: usize = 20;
/// Intents remembered as settled before the memory is cleared.
const SETTLED_MAX: usize = 200_000;

/// How far back and how late the reconciler looks.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Intents younger than this are left to the API's saga in flight.
    pub grace: Duration,
    /// How far back the first pass of a cluster lists intents (before the cursor exists, and
    /// before version 2).
    pub lookback: Duration,
    /// The cluster version this node applied: the cursor and the unfinished set need 2.
    pub cluster_version: ClusterVersion,
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
    /// Steps of the store's cursor.
    pub cursor_steps: u32,
    /// Where the cursor stands after the pass.
    pub cursor: Option<ReconcileCursor>,
    /// Intents added to the unfinished set as not settled when the cursor passed them.
    pub left_unfinished: u32,
    /// Unfinished payments looked at.
    pub unfinished_seen: u32,
    /// Of those, settled and taken out of the set.
    pub unfinished_settled: u32,
    /// Payments failed in the store because the provider never had their intent.
    pub failed_without_intent: u32,
    /// Contradictions that cannot be healed (e.g. an order whose payment is voided).
    pub anomalies: Vec<String>,
    /// What went wrong (retried next pass).
    pub errors: Vec<String>,
}

impl ReconcileReport {
    /// Adds what one intent's walk counted.
    fn merge(&mut self, other: ReconcileReport) {
        self.intents_seen += other.intents_seen;
        self.skipped_young += other.skipped_young;
        self.settled += other.settled;
        self.captured += other.captured;
        self.completed += other.completed;
        self.fenced += other.fenced;
        self.voided += other.voided;
        self.failed_in_store += other.failed_in_store;
        self.refunded_orphans += other.refunded_orphans;
        self.failed_without_intent += other.failed_without_intent;
        for a in other.anomalies {
            if self.anomalies.len() < REPORT_ERRORS_MAX {
                self.anomalies.push(a);
            }
        }
        for e in other.errors {
            if self.errors.len() < REPORT_ERRORS_MAX {
                self.errors.push(e);
            }
        }
    }

    fn error(&mut self, e: String) {
        metrics::counter!("ticketd_worker_errors_total", "part" => "reconciler").increment(1);
        if self.errors.len() < REPORT_ERRORS_MAX {
            self.errors.push(e);
        }
    }

    /// Counts the first thing done for one intent: the step that names what happened to it
    /// (a fence's failure and void count as the fence, a completion's capture as the
    /// completion).
    fn count(&mut self, done: Counted) {
        let counter = match done {
            Counted::Captured => &mut self.captured,
            Counted::Completed => &mut self.completed,
            Counted::Fenced => &mut self.fenced,
            Counted::Voided => &mut self.voided,
            Counted::FailedInStore => &mut self.failed_in_store,
            Counted::RefundedOrphan => &mut self.refunded_orphans,
        };
        *counter += 1;
    }
}

/// The kinds of [`ReconcileReport`] counts.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Captured,
    Completed,
    Fenced,
    Voided,
    FailedInStore,
    RefundedOrphan,
}

/// Whether an intent needs another look.
enum Fate {
    /// Nothing more to do for this intent.
    Settled,
    /// Look again next pass.
    Later,
}

/// After one step: ask again, or stop for this pass.
enum Next {
    Again,
    Stop(Fate),
}

/// One intent's walk through the table in a pass.
struct Walk<'a> {
    intent: &'a Intent,
    /// What happened first, for the report.
    counted: Option<Counted>,
    /// The fence was refused for good: the hold never takes this payment.
    refused_for_good: bool,
}

impl Walk<'_> {
    fn count(&mut self, what: Counted) {
        self.counted.get_or_insert(what);
    }
}

/// The reconciler of one leader.
pub struct Reconciler {
    cluster: Arc<ClusterClient>,
    provider: HttpProvider,
    config: ReconcilerConfig,
    /// Intents that need nothing more (terminal at the provider and in the store).
    settled: Mutex<HashSet<String>>,
    /// Where the walk of the unfinished set goes on (a pass reads at most [`PAGES_MAX`]
    /// pages; `None`: from the start).
    unfinished_from: Mutex<Option<String>>,
    /// One pass at a time.
    pass: tokio::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or(0)
}

impl Reconciler {
    /// A reconciler writing through `cluster` (to the leader, as [`LEADER_CLIENT_ID`]).
    pub fn new(
        cluster: Arc<ClusterClient>,
        provider: HttpProvider,
        config: ReconcilerConfig,
    ) -> Self {
        Self {
            cluster,
            provider,
            config,
            settled: Mutex::default(),
            unfinished_from: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
        }
    }

    /// The payment provider it reconciles with (the dispatcher refunds through it).
    pub fn provider(&self) -> &HttpProvider {
        &self.provider
    }

    /// One reconcile pass over the intents created in the look-back, within its deadline.
    pub async fn pass(&self) -> ReconcileReport {
        let _one = self.pass.lock().await;
        let mut report = ReconcileReport::default();
        if tokio::time::timeout(PASS_DEADLINE, self.pages(&mut report))
            .await
            .is_err()
        {
            report.error("the pass ran out of time; the next one goes on".into());
        }
        for (what, count) in [
            ("captured", report.captured),
            ("completed", report.completed),
            ("fenced", report.fenced),
            ("voided", report.voided),
            ("failed_in_store", report.failed_in_store),
            ("refunded_orphan", report.refunded_orphans),
        ] {
            metrics::counter!("ticketd_reconcile_actions_total", "action" => what)
                .increment(u64::from(count));
        }
        metrics::counter!("ticketd_reconcile_anomalies_total")
            .increment(report.anomalies.len() as u64);
        report
    }

    async fn pages(&self, report: &mut ReconcileReport) {
        if self.config.cluster_version.get() < PAYMENTS_IN_STORE {
            return self.lookback(report).await;
        }
        self.new_intents(report).await;
        self.unfinished(report).await;
    }

    /// The store's cursor; `None` before it first moved.
    async fn cursor(&self) -> Result<Option<ReconcileCursor>, String> {
        let query = Query::ReconcileCursor {
            name: CURSOR.into(),
        };
        match self.read(&query).await? {
            QueryResult::Cursor(c) => Ok(c),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    async fn read(&self, query: &Query) -> Result<QueryResult, String> {
        self.cluster
            .read(query, Consistency::Linearizable)
            .await
            .map(|a| a.result)
            .map_err(|e| format!("read {query:?}: {e}"))
    }

    /// Walks the intents created since the cursor, page by page, moving the cursor past each
    /// page's intents that are past the grace period; stops at the first young one.
    async fn new_intents(&self, report: &mut ReconcileReport) {
        let now = now_ms();
        let young = now - self.config.grace.as_millis() as i64;
        let (mut since, mut after) = match self.cursor().await {
            Ok(Some(c)) => {
                report.cursor = Some(c.clone());
                (c.created_ms, Some(c.intent_id))
            }
            Ok(None) => (now - self.config.lookback.as_millis() as i64, None),
            Err(e) => return report.error(e),
        };
        for _ in 0..PAGES_MAX {
            let page = match self
                .provider
                .list_created_since(since, after.as_deref(), PAGE_SIZE)
                .await
            {
                Ok(page) => page,
                Err(e) => return report.error(format!("listing intents: {e}")),
            };
            let old: Vec<&Intent> = page
                .data
                .iter()
                .take_while(|i| i.created_ms <= young)
                .collect();
            let Some(last) = old.last().copied() else {
                report.skipped_young += page.data.len() as u32;
                return;
            };
            let fates = self.walk(&old, young, report).await;
            let unsettled: Vec<String> = old
                .iter()
                .zip(&fates)
                .filter(|(_, settled)| !**settled)
                .map(|(i, _)| i.id.clone())
                .collect();
            report.left_unfinished += unsettled.len() as u32;
            let step = Command::AdvanceCursor {
                name: CURSOR.into(),
                created_ms: last.created_ms,
                intent_id: last.id.clone(),
                unsettled,
            };
            let key = format!("cursor:{CURSOR}:{}", last.id);
            match self.write(&key, &step).await {
                Ok(Outcome::Done(_)) => report.cursor_steps += 1,
                Ok(Outcome::Rejected { code, detail }) => {
                    return report.error(format!("cursor not moved: {}: {detail}", code.code()))
                }
                Err(e) => return report.error(format!("cursor not moved: {e}")),
            }
            report.cursor = Some(ReconcileCursor {
                created_ms: last.created_ms,
                intent_id: last.id.clone(),
            });
            if old.len() < page.data.len() || !page.has_more {
                report.skipped_young += (page.data.len() - old.len()) as u32;
                return;
            }
            since = last.created_ms;
            after = Some(last.id.clone());
        }
    }

    /// Walks the store's unfinished payments, each looked up at the provider; those settled
    /// leave the set. A pass goes on where the last one stopped, and from the start once it
    /// reached the end.
    async fn unfinished(&self, report: &mut ReconcileReport) {
        let young = now_ms() - self.config.grace.as_millis() as i64;
        let mut after = self
            .unfinished_from
            .lock()
            .expect("unfinished position lock")
            .take();
        for _ in 0..PAGES_MAX {
            let query = Query::UnfinishedPayments {
                after: after.clone(),
                limit: PAGE_SIZE,
            };
            let page = match self.read(&query).await {
                Ok(QueryResult::Unfinished(page)) => page,
                Ok(other) => return report.error(format!("unexpected answer {other:?}")),
                Err(e) => return report.error(e),
            };
            let Some((last, _)) = page.last() else {
                return;
            };
            after = Some(last.clone());
            report.unfinished_seen += page.len() as u32;
            let mut settled = Vec::new();
            for chunk in page.chunks(WALK_CONCURRENCY) {
                let looks: Vec<_> = chunk
                    .iter()
                    .map(|(payment_ref, row)| self.look_up(payment_ref, &row.hold_id, young))
                    .collect();
                let looked = futures::future::join_all(looks).await;
                for ((payment_ref, _), (done, mine)) in chunk.iter().zip(looked) {
                    report.merge(mine);
                    if done {
                        settled.push(payment_ref.clone());
                    }
                }
            }
            if !settled.is_empty() {
                let key = format!("settled:{}", uuid::Uuid::new_v4().simple());
                let command = Command::PaymentsSettled {
                    payment_refs: settled,
                };
                match self.write(&key, &command).await {
                    Ok(Outcome::Done(Done::PaymentsSettled { removed })) => {
                        report.unfinished_settled += removed;
                    }
                    Ok(other) => report.error(format!("settling payments: {other:?}")),
                    Err(e) => report.error(format!("settling payments: {e}")),
                }
            }
            if page.len() < PAGE_SIZE as usize {
                return;
            }
        }
        *self
            .unfinished_from
            .lock()
            .expect("unfinished position lock") = after;
    }

    /// Looks unfinished payment `payment_ref` up at the provider and walks it; whether it is
    /// settled. A payment the provider has no intent for, still pending in the store past the
    /// grace period, can never be authorized by its saga's step any more: it is failed.
    async fn look_up(
        &self,
        payment_ref: &str,
        hold_id: &str,
        young_ms: i64,
    ) -> (bool, ReconcileReport) {
        let mut report = ReconcileReport::default();
        let settled = self
            .look_up_into(payment_ref, hold_id, young_ms, &mut report)
            .await;
        (settled, report)
    }

    async fn look_up_into(
        &self,
        payment_ref: &str,
        hold_id: &str,
        young_ms: i64,
        report: &mut ReconcileReport,
    ) -> bool {
        if self.known_settled(payment_ref) {
            report.intents_seen += 1;
            report.settled += 1;
            return true;
        }
        match self.provider.find(payment_ref).await {
            Ok(Some(intent)) => self.one(&intent, young_ms, report).await,
            Ok(None) => match self
                .without_intent(payment_ref, hold_id, young_ms, report)
                .await
            {
                Ok(settled) => settled,
                Err(e) => {
                    report.error(format!("{payment_ref}: {e}"));
                    false
                }
            },
            Err(e) => {
                report.error(format!("looking up {payment_ref}: {e}"));
                false
            }
        }
    }

    /// An unfinished payment the provider has no intent for.
    async fn without_intent(
        &self,
        payment_ref: &str,
        hold_id: &str,
        young_ms: i64,
        report: &mut ReconcileReport,
    ) -> Result<bool, String> {
        report.intents_seen += 1;
        let payment = store::payment(&self.cluster, payment_ref)
            .await
            .map_err(|e| e.to_string())?;
        match payment {
            // The intent vanished, or the cursor added an id the provider forgot: nothing
            // moved at the provider, and the store has nothing in flight.
            None => Ok(true),
            Some(p) if p.status == PaymentStatus::Pending => {
                if p.started_at_ms > young_ms {
                    report.skipped_young += 1;
                    return Ok(false);
                }
                let command = Command::PaymentFailed {
                    hold_id: if hold_id.is_empty() {
                        p.hold_id.clone()
                    } else {
                        hold_id.to_string()
                    },
                    payment_ref: payment_ref.to_string(),
                    reason: "the provider has no intent for it".into(),
                };
                let key = format!("reconcile:no-intent:{payment_ref}");
                if let Outcome::Done(_) = self.write(&key, &command).await? {
                    report.failed_without_intent += 1;
                }
                // Failed now, or decided meanwhile: the next pass sees which.
                Ok(false)
            }
            Some(p) => {
                if let PaymentStatus::Confirmed { order_id } = &p.status {
                    report.anomalies.push(format!(
                        "order {order_id} is paid by {payment_ref}, which the provider does not have"
                    ));
                    return Ok(false);
                }
                Ok(true)
            }
        }
    }

    /// Walks `intents` (a few at a time); for each, whether it is settled.
    async fn walk(
        &self,
        intents: &[&Intent],
        young_ms: i64,
        report: &mut ReconcileReport,
    ) -> Vec<bool> {
        let mut fates = Vec::with_capacity(intents.len());
        for chunk in intents.chunks(WALK_CONCURRENCY) {
            let walks: Vec<_> = chunk
                .iter()
                .map(|intent| self.walk_one(intent, young_ms))
                .collect();
            for (settled, mine) in futures::future::join_all(walks).await {
                report.merge(mine);
                fates.push(settled);
            }
        }
        fates
    }

    /// One intent's walk with its own report.
    async fn walk_one(&self, intent: &Intent, young_ms: i64) -> (bool, ReconcileReport) {
        let mut mine = ReconcileReport::default();
        let settled = self.one(intent, young_ms, &mut mine).await;
        (settled, mine)
    }

    /// Before version 2: the intents created in the look-back, oldest first.
    async fn lookback(&self, report: &mut ReconcileReport) {
        let now = now_ms();
        let since = now - self.config.lookback.as_millis() as i64;
        let young = now - self.config.grace.as_millis() as i64;
        let mut after: Option<String> = None;
        for _ in 0..PAGES_MAX {
            let page = match self
                .provider
                .list_created_since(since, after.as_deref(), PAGE_SIZE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    report.error(format!("listing intents: {e}"));
                    return;
                }
            };
            for intent in &page.data {
                let _settled = self.one(intent, young, report).await;
            }
            after = page.data.last().map(|i| i.id.clone());
            if !page.has_more || after.is_none() {
                return;
            }
        }
    }

    /// Whether this leader already saw intent `id` settled.
    fn known_settled(&self, id: &str) -> bool {
        self.settled.lock().expect("settled lock").contains(id)
    }

    /// Reconciles one intent, unless it is settled already or young; whether it is settled.
    async fn one(&self, intent: &Intent, young_ms: i64, report: &mut ReconcileReport) -> bool {
        report.intents_seen += 1;
        if self.known_settled(&intent.id) {
            report.settled += 1;
            return true;
        }
        if intent.created_ms > young_ms {
            report.skipped_young += 1;
            return false;
        }
        let fate = tokio::time::timeout(INTENT_DEADLINE, self.intent(intent, report)).await;
        match fate {
            Ok(Ok(Fate::Settled)) => {
                report.settled += 1;
                let mut settled = self.settled.lock().expect("settled lock");
                if settled.len() >= SETTLED_MAX {
                    settled.clear();
                }
                settled.insert(intent.id.clone());
                true
            }
            Ok(Ok(Fate::Later)) => false,
            Ok(Err(e)) => {
                report.error(format!("{}: {e}", intent.id));
                false
            }
            Err(_) => {
                report.error(format!("{}: ran out of time", intent.id));
                false
            }
        }
    }

    /// Observe, decide, act, until the table says settled or to look again later.
    async fn intent(&self, intent: &Intent, report: &mut ReconcileReport) -> Result<Fate, String> {
        let mut walk = Walk {
            intent,
            counted: None,
            refused_for_good: false,
        };
        let mut fate = Err(format!("not settled after {STEPS_PER_INTENT_MAX} steps"));
        for _ in 0..STEPS_PER_INTENT_MAX {
            let payment = store::payment(&self.cluster, &intent.id)
                .await
                .map_err(|e| e.to_string())?;
            let Some(hold) = self.hold_view(&walk, payment.as_ref(), report).await? else {
                fate = Ok(Fate::Settled);
                break;
            };
            let action = decide(intent, payment.as_ref(), hold);
            match self
                .act(&mut walk, payment.as_ref(), action, report)
                .await?
            {
                Next::Again => {}
                Next::Stop(stop) => {
                    fate = Ok(stop);
                    break;
                }
            }
        }
        if let Some(counted) = walk.counted {
            report.count(counted);
        }
        fate
    }

    /// Whether the hold can still take the payment; `None`: the intent names no hold (left
    /// alone, reported).
    async fn hold_view(
        &self,
        walk: &Walk<'_>,
        payment: Option<&Payment>,
        report: &mut ReconcileReport,
    ) -> Result<Option<HoldView>, String> {
        let intent = walk.intent;
        let hold_id = match payment {
            Some(p) if p.status == PaymentStatus::Pending => {
                if self.replays_fence_start(intent, p).await? {
                    return Ok(Some(HoldView::Fenced));
                }
                p.hold_id.clone()
            }
            // The hold does not matter to a decided payment.
            Some(_) => return Ok(Some(HoldView::Open)),
            None => match intent.metadata.get("hold_id") {
                Some(hold_id) => hold_id.clone(),
                None => {
                    report
                        .anomalies
                        .push(format!("{} names no hold; left alone", intent.id));
                    return Ok(None);
                }
            },
        };
        if walk.refused_for_good {
            return Ok(Some(HoldView::Closed));
        }
        let hold = store::hold(&self.cluster, &hold_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(match hold {
            Some(h) if h.status == HoldStatus::Live => HoldView::Open,
            _ => HoldView::Closed,
        }))
    }

    /// Whether the pending payment `payment` was started by this intent's fence: its start,
    /// proposed again under the fence's key, replays as done.
    async fn replays_fence_start(
        &self,
        intent: &Intent,
        payment: &Payment,
    ) -> Result<bool, String> {
        let (key, start) = fence_start(intent, &payment.hold_id, &payment.user_id);
        Ok(matches!(self.write(&key, &start).await?, Outcome::Done(_)))
    }

    /// Performs `action`; whether to ask again.
    async fn act(
        &self,
        walk: &mut Walk<'_>,
        payment: Option<&Payment>,
        action: Action,
        report: &mut ReconcileReport,
    ) -> Result<Next, String> {
        let intent = walk.intent;
        match action {
            Action::Capture { order_id } => {
                self.provider
                    .capture(&intent.id)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(payment = %intent.id, order = %order_id, "reconciler captured");
                walk.count(Counted::Captured);
                Ok(Next::Stop(Fate::Settled))
            }
            Action::Complete => {
                let payment = payment.ok_or("completing a payment the store does not have")?;
                self.complete(walk, payment).await
            }
            Action::FailInStore(reason) => {
                let payment = payment.ok_or("failing a payment the store does not have")?;
                self.fail_in_store(walk, payment, reason, report).await
            }
            Action::Fence => self.fence(walk).await,
            Action::Void => {
                self.provider
                    .cancel(&intent.id)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(payment = %intent.id, "reconciler voided an authorization");
                walk.count(Counted::Voided);
                Ok(Next::Stop(Fate::Settled))
            }
            Action::RefundOrphan => {
                let left = intent.net_captured();
                self.provider
                    .refund(&intent.id, left, &format!("orphan:{}", intent.id))
                    .await
                    .map_err(|e| e.to_string())?;
                report.anomalies.push(format!(
                    "{} was captured without an order; refunded {left}",
                    intent.id
                ));
                walk.count(Counted::RefundedOrphan);
                Ok(Next::Stop(Fate::Settled))
            }
            Action::Anomaly => {
                tracing::error!(payment = %intent.id, "an order's payment is voided");
                let order = match payment.map(|p| &p.status) {
                    Some(PaymentStatus::Confirmed { order_id }) => order_id.as_str(),
                    _ => "?",
                };
                report
                    .anomalies
                    .push(format!("order {order} has a voided payment {}", intent.id));
                Ok(Next::Stop(Fate::Later))
            }
            Action::Settled => Ok(Next::Stop(Fate::Settled)),
        }
    }

    /// Turns the pinned hold into an order; whatever the store answers, ask again (a refusal
    /// means someone else decided first: follow the store).
    async fn complete(&self, walk: &mut Walk<'_>, payment: &Payment) -> Result<Next, String> {
        let intent = walk.intent;
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let seed: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect();
        let confirm = Command::ConfirmPurchase {
            hold_id: payment.hold_id.clone(),
            order_id: format!("o-{attempt}"),
            payment_ref: intent.id.clone(),
            amount_minor: payment.amount_minor,
            currency: payment.currency.clone(),
            secret_seed: seed,
        };
        let key = format!("reconcile:confirm:{}:{attempt}", intent.id);
        if let Outcome::Done(Done::PurchaseConfirmed { order_id, .. }) =
            self.write(&key, &confirm).await?
        {
            tracing::info!(payment = %intent.id, order = %order_id, "reconciler completed a purchase");
            walk.count(Counted::Completed);
        }
        Ok(Next::Again)
    }

    /// Records the pending payment as failed (which unpins its hold), then asks again; a
    /// refusal (confirmed meanwhile) is followed the same way.
    async fn fail_in_store(
        &self,
        walk: &mut Walk<'_>,
        payment: &Payment,
        reason: FailReason,
        report: &mut ReconcileReport,
    ) -> Result<Next, String> {
        let intent = walk.intent;
        let (key, text) = match reason {
            FailReason::Fenced => (
                format!("reconcile:fence-fail:{}", intent.id),
                reason.text().to_string(),
            ),
            FailReason::VoidedAtProvider => (
                format!("reconcile:voided:{}", intent.id),
                reason.text().to_string(),
            ),
            FailReason::AmountMismatch => {
                let why = format!(
                    "authorized {} {} for a payment of {} {}",
                    intent.amount, intent.currency, payment.amount_minor, payment.currency
                );
                report.anomalies.push(format!("{}: {why}", intent.id));
                (format!("reconcile:mismatch:{}", intent.id), why)
            }
            FailReason::Refused => (
                format!("reconcile:refused:{}", intent.id),
                reason.text().to_string(),
            ),
            FailReason::CapturedWithoutOrder => (
                format!("reconcile:captured:{}", intent.id),
                reason.text().to_string(),
            ),
        };
        let command = Command::PaymentFailed {
            hold_id: payment.hold_id.clone(),
            payment_ref: intent.id.clone(),
            reason: text,
        };
        if let Outcome::Done(_) = self.write(&key, &command).await? {
            match reason {
                FailReason::Fenced => walk.count(Counted::Fenced),
                FailReason::VoidedAtProvider => walk.count(Counted::FailedInStore),
                _ => {}
            }
        }
        Ok(Next::Again)
    }

    /// Pins the live hold with the payment under the fence's key, so the buyer's late retry
    /// cannot start it after the void; then asks again (the table fails it and voids it).
    async fn fence(&self, walk: &mut Walk<'_>) -> Result<Next, String> {
        let intent = walk.intent;
        let hold_id = intent
            .metadata
            .get("hold_id")
            .ok_or("fencing an intent that names no hold")?;
        let hold = store::hold(&self.cluster, hold_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("hold {hold_id} vanished"))?;
        let (key, start) = fence_start(intent, &hold.hold_id, &hold.user_id);
        match self.write(&key, &start).await? {
            Outcome::Done(_) => {
                tracing::info!(payment = %intent.id, hold = %hold_id, "reconciler fenced an abandoned authorization");
                walk.count(Counted::Fenced);
                Ok(Next::Again)
            }
            Outcome::Rejected { code, .. } if refused_for_good(code) => {
                walk.refused_for_good = true;
                Ok(Next::Again)
            }
            // The payment appeared meanwhile, or another one is in flight: look again.
            Outcome::Rejected { .. } => Ok(Next::Stop(Fate::Later)),
        }
    }

    /// A write's outcome; an unknown outcome is an error (the next pass looks again).
    async fn write(&self, key: &str, command: &Command) -> Result<Outcome, String> {
        store::write(&self.cluster, LEADER_CLIENT_ID, key, command)
            .await
            .map(|w| w.outcome)
            .map_err(|e| e.to_string())
    }
}

/// Rejections of a fence's start that mean this hold never takes this payment.
fn refused_for_good(code: Rejection) -> bool {
    matches!(
        code,
        Rejection::HoldExpired
            | Rejection::HoldNotLive
            | Rejection::NotFound
            | Rejection::NotOwner
            | Rejection::AmountMismatch
            | Rejection::InvalidArgument
            | Rejection::PaymentAttemptsExceeded
    )
}

/// The fence's first command for intent `intent` on a hold of `user_id`: deterministic, so its
/// idempotency key replays it (and so tells a fence cut short from a buyer's payment).
fn fence_start(intent: &Intent, hold_id: &str, user_id: &str) -> (String, Command) {
    (
        format!("reconcile:fence-start:{}", intent.id),
        Command::StartPayment {
            hold_id: hold_id.to_string(),
            user_id: user_id.to_string(),
            payment_ref: intent.id.clone(),
            amount_minor: intent.amount,
            currency: intent.currency.clone(),
        },
    )
}
