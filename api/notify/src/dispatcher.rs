//! The outbox dispatcher, run by the leader: sends what the store's outbox says is due (email
//! over SMTP, SMS through the provider), refunds what `Refund` notifications owe, then records
//! each one as sent.
//!
//! Notifications are delivered at least once: a message is sent, then marked sent; a leader
//! change between the two sends it again with the same stable id (`Message-ID`
//! `<notification id@domain>`, SMS id = notification id), which receivers deduplicate.
//!
//! A failed delivery is recorded in the store (from cluster version 2 on:
//! `NotificationFailed`), which offers the notification again only at its next attempt, with
//! backoff, and after `attempts_max` failures an hour later (parked); so failing notifications
//! never stand in front of the others, and a new leader keeps their attempts. A pass pages
//! through what is due (past what it cannot deliver) until its batch is full. Before version 2
//! the attempts are this leader's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use ticketd_money::provider::HttpProvider;
use ticketd_money::store::{self, LEADER_CLIENT_ID};
use ticketd_raft::client::{ClusterClient, Consistency};
use ticketd_raft::version::ClusterVersion;
use ticketd_store::command::OrderView;
use ticketd_store::limits::{DELIVERY_ATTEMPTS_MAX, DELIVERY_ERROR_LEN_MAX};
use ticketd_store::types::{Notification, NotificationKind, User};
use ticketd_store::version::PAYMENTS_IN_STORE;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::email::{Email, SmtpMailer};
use crate::message::{self, Message};
use crate::sms::{HttpSms, Sms};
use crate::SendError;

/// Longest the dispatcher spends on one notification (refund, messages, mark).
const NOTIFY_DEADLINE: Duration = Duration::from_secs(30);
/// Pending notifications read per page of due ones (the store's query cap).
const DUE_PAGE: u32 = 500;
/// Pages of due notifications one pass reads at most.
const DUE_PAGES_MAX: u32 = 20;
/// Notifications delivered concurrently.
const SEND_CONCURRENCY: usize = 4;
/// First retry delay of a failed notification; doubles per attempt up to [`RETRY_DELAY_MAX`].
const RETRY_DELAY_FIRST: Duration = Duration::from_secs(1);
/// Longest retry delay.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(300);
/// Errors kept in a report.
const REPORT_ERRORS_MAX: usize = 20;
/// Failed notifications a leader remembers before version 2 (the memory is cleared past it).
const RETRIES_REMEMBERED_MAX: usize = 100_000;

/// Reads of this node's own state machine, in process: the node's gRPC answers leave secrets
/// out for every caller but the API, and the e-tickets mailed need the tickets' code secrets.
pub type LocalReads = Arc<dyn Fn(&Query) -> QueryResult + Send + Sync>;

/// What the dispatcher sends through, and how hard it tries.
pub struct DispatcherConfig {
    /// The payment provider refunds go through; without it refunds wait.
    pub provider: Option<HttpProvider>,
    /// SMTP relay; without it no email.
    pub mailer: Option<SmtpMailer>,
    /// SMS provider; without it no SMS.
    pub sms: Option<HttpSms>,
    /// Notifications delivered per dispatch pass at most.
    pub batch: usize,
    /// Attempts of one notification before it is parked (retried an hour later, or by an
    /// on-demand pass; before version 2, only by an on-demand pass or the next leader).
    pub attempts_max: u32,
    /// The cluster version this node applied: failed deliveries are kept in the store from 2.
    pub cluster_version: ClusterVersion,
}

/// What one dispatch pass found and did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DispatchReport {
    /// Pending notifications due now that were read (up to the pages' cap).
    pub due: u32,
    /// Pages of due notifications read.
    pub pages: u32,
    /// Delivered and recorded as sent.
    pub sent: u32,
    /// Of those, refunds made at the provider.
    pub refunds: u32,
    /// Waiting for their retry time.
    pub deferred: u32,
    /// Failed this pass (retried later with backoff).
    pub failed: u32,
    /// Parked after too many attempts (before version 2: skipped as parked).
    pub parked: u32,
    /// Parked ones given another try by an on-demand pass.
    pub unparked: u32,
    /// What went wrong.
    pub errors: Vec<String>,
}

/// A failed notification's attempts and when to try again.
struct Retry {
    attempts: u32,
    next_at: Instant,
}

/// The dispatcher of one leader.
pub struct Dispatcher {
    cluster: Arc<ClusterClient>,
    local: LocalReads,
    config: DispatcherConfig,
    retries: Mutex<HashMap<String, Retry>>,
    pass: tokio::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or(0)
}

impl Dispatcher {
    /// A dispatcher writing through `cluster` (to the leader), reading this node through
    /// `local`.
    pub fn new(cluster: Arc<ClusterClient>, local: LocalReads, config: DispatcherConfig) -> Self {
        Self {
            cluster,
            local,
            config,
            retries: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether it has anything to send through.
    pub fn has_channels(&self) -> bool {
        self.config.provider.is_some() || self.config.mailer.is_some() || self.config.sms.is_some()
    }

    /// Forgets every retry delay (a new term of leadership starts afresh).
    pub fn forget_retries(&self) {
        self.retries.lock().expect("retries lock").clear();
    }

    /// One dispatch pass: the due notifications not waiting for a retry, up to the batch, a few
    /// at a time, each within its deadline. `include_parked` gives parked ones another try.
    pub async fn pass(self: &Arc<Self>, include_parked: bool) -> DispatchReport {
        let _one = self.pass.lock().await;
        let mut report = DispatchReport::default();
        let mut picked = Vec::new();
        if include_parked && self.in_store() {
            picked = self.parked(&mut report).await;
        }
        let now = now_ms();
        let mut after = None;
        while picked.len() < self.config.batch && report.pages < DUE_PAGES_MAX {
            let query = Query::DueNotifications {
                up_to_ms: now,
                after: after.clone(),
                limit: DUE_PAGE,
            };
            let due = match self.notifications(&query).await {
                Ok(due) => due,
                Err(e) => {
                    report.errors.push(e);
                    break;
                }
            };
            report.pages += 1;
            report.due += due.len() as u32;
            let Some(last) = due.last() else {
                break;
            };
            // The page's last position: a failed one is offered at its next attempt.
            let position = (self.offered_at(last), last.notification_id.clone());
            let full = due.len() == DUE_PAGE as usize;
            let room = self.config.batch - picked.len();
            let mut more = self.pick(&due, include_parked, &mut report);
            more.retain(|n| {
                !picked
                    .iter()
                    .any(|p: &Notification| p.notification_id == n.notification_id)
            });
            more.truncate(room);
            picked.extend(more);
            if !full {
                break;
            }
            after = Some(position);
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(SEND_CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for notification in picked {
            let dispatcher = self.clone();
            let slots = slots.clone();
            set.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let result =
                    tokio::time::timeout(NOTIFY_DEADLINE, dispatcher.deliver(&notification))
                        .await
                        .unwrap_or_else(|_| Err("ran out of time".into()));
                (notification, result)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((notification, result)) = joined else {
                continue;
            };
            self.record(&notification, result, &mut report).await;
        }
        report
    }

    /// Whether failed deliveries are kept in the store (cluster version 2 on).
    fn in_store(&self) -> bool {
        self.config.cluster_version.get() >= PAYMENTS_IN_STORE
    }

    /// When the store offers `n`: its next attempt once a delivery failed, else its due time
    /// (this node's own state, as the page was just read from it or a peer as fresh).
    fn offered_at(&self, n: &Notification) -> i64 {
        match (self.local)(&Query::DeliveryRetry {
            notification_id: n.notification_id.clone(),
        }) {
            QueryResult::Retries(r) => r.first().map_or(n.due_at_ms, |(_, r)| r.next_at_ms),
            _ => n.due_at_ms,
        }
    }

    async fn notifications(&self, query: &Query) -> Result<Vec<Notification>, String> {
        match self.cluster.read(query, Consistency::Linearizable).await {
            Ok(answer) => match answer.result {
                QueryResult::Notifications(due) => Ok(due),
                other => Err(format!("unexpected answer {other:?}")),
            },
            Err(e) => Err(format!("read {query:?}: {e}")),
        }
    }

    /// The parked notifications (up to the batch), for an on-demand pass.
    async fn parked(&self, report: &mut DispatchReport) -> Vec<Notification> {
        let query = Query::DeliveryRetries {
            after: None,
            parked_only: true,
            limit: u32::try_from(self.config.batch).unwrap_or(u32::MAX),
        };
        let parked = match self.cluster.read(&query, Consistency::Linearizable).await {
            Ok(answer) => match answer.result {
                QueryResult::Retries(r) => r,
                other => {
                    report.errors.push(format!("unexpected answer {other:?}"));
                    return Vec::new();
                }
            },
            Err(e) => {
                report.errors.push(format!("read {query:?}: {e}"));
                return Vec::new();
            }
        };
        let mut picked = Vec::new();
        for (id, _) in parked {
            let one = Query::GetNotification {
                notification_id: id,
            };
            match self.notifications(&one).await {
                Ok(n) => picked.extend(n.into_iter().filter(|n| self.can_deliver(&n.kind))),
                Err(e) => report.errors.push(e),
            }
        }
        report.unparked = picked.len() as u32;
        picked
    }

    /// The due notifications to try now: those it can deliver, not parked (unless asked) and
    /// not waiting for their retry time, up to the batch.
    fn pick(
        &self,
        due: &[Notification],
        include_parked: bool,
        report: &mut DispatchReport,
    ) -> Vec<Notification> {
        let mut retries = self.retries.lock().expect("retries lock");
        let now = Instant::now();
        let max = self.config.attempts_max;
        due.iter()
            .filter(|n| self.can_deliver(&n.kind))
            .filter(|n| match retries.get_mut(&n.notification_id) {
                None => true,
                Some(r) if r.attempts >= max => {
                    if include_parked {
                        r.attempts = max - 1;
                        true
                    } else {
                        report.parked += 1;
                        false
                    }
                }
                Some(r) if r.next_at > now && !include_parked => {
                    report.deferred += 1;
                    false
                }
                Some(_) => true,
            })
            .take(self.config.batch)
            .cloned()
            .collect()
    }

    /// Counts one delivery's result, and schedules its retry when it failed: in the store
    /// from version 2 on, else in this leader's memory.
    async fn record(
        &self,
        notification: &Notification,
        result: Result<(), String>,
        report: &mut DispatchReport,
    ) {
        let kind = kind_name(&notification.kind);
        let id = &notification.notification_id;
        match result {
            Ok(()) => {
                report.sent += 1;
                if matches!(notification.kind, NotificationKind::Refund { .. }) {
                    report.refunds += 1;
                }
                metrics::counter!("ticketd_notifications_dispatched_total", "kind" => kind)
                    .increment(1);
                self.retries.lock().expect("retries lock").remove(id);
            }
            Err(e) => {
                report.failed += 1;
                metrics::counter!("ticketd_worker_errors_total", "part" => "dispatcher")
                    .increment(1);
                tracing::warn!(notification = %id, kind, error = %e, "delivery failed; retried later");
                if report.errors.len() < REPORT_ERRORS_MAX {
                    report.errors.push(format!("{id}: {e}"));
                }
                if self.in_store() {
                    return self.failed_in_store(notification, &e, report).await;
                }
                let mut retries = self.retries.lock().expect("retries lock");
                if retries.len() >= RETRIES_REMEMBERED_MAX {
                    retries.clear();
                }
                let retry = retries.entry(id.clone()).or_insert(Retry {
                    attempts: 0,
                    next_at: Instant::now(),
                });
                retry.attempts += 1;
                let delay = RETRY_DELAY_FIRST
                    .saturating_mul(1 << retry.attempts.min(16).saturating_sub(1))
                    .min(RETRY_DELAY_MAX);
                retry.next_at = Instant::now() + delay;
            }
        }
    }

    /// Records a failed delivery in the store, which offers the notification again at its next
    /// attempt (parked after `attempts_max`).
    async fn failed_in_store(
        &self,
        notification: &Notification,
        error: &str,
        report: &mut DispatchReport,
    ) {
        let id = &notification.notification_id;
        let mut text = error.to_string();
        if text.len() > DELIVERY_ERROR_LEN_MAX {
            let mut end = DELIVERY_ERROR_LEN_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let command = Command::NotificationFailed {
            notification_id: id.clone(),
            park_after: self.config.attempts_max.clamp(1, DELIVERY_ATTEMPTS_MAX),
            error: text,
        };
        let key = format!("failed:{id}:{}", uuid::Uuid::new_v4().simple());
        match store::write(&self.cluster, LEADER_CLIENT_ID, &key, &command).await {
            Ok(w) => match w.outcome {
                Outcome::Done(ticketd_store::command::Done::NotificationDeferred {
                    parked: true,
                    ..
                }) => report.parked += 1,
                Outcome::Done(_) => {}
                // Sent or voided meanwhile.
                Outcome::Rejected {
                    code: Rejection::InvalidState,
                    ..
                } => {}
                Outcome::Rejected { code, detail } => {
                    if report.errors.len() < REPORT_ERRORS_MAX {
                        report
                            .errors
                            .push(format!("{id}: {}: {detail}", code.code()));
                    }
                }
            },
            Err(e) => {
                if report.errors.len() < REPORT_ERRORS_MAX {
                    report
                        .errors
                        .push(format!("{id}: recording the failure: {e}"));
                }
            }
        }
    }

    fn can_deliver(&self, kind: &NotificationKind) -> bool {
        match kind {
            NotificationKind::Refund { .. } => self.config.provider.is_some(),
            _ => self.config.mailer.is_some() || self.config.sms.is_some(),
        }
    }

    /// Delivers one notification (refunding first for a refund), then records it as sent.
    async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        let user = match (self.local)(&Query::GetUser {
            user_id: notification.user_id.clone(),
        }) {
            QueryResult::User(user) => user,
            other => return Err(format!("unexpected answer {other:?}")),
        };
        let order = match (self.local)(&Query::GetOrder {
            order_id: notification.order_id.clone(),
        }) {
            QueryResult::Order(Some(order)) => order,
            QueryResult::Order(None) => return Err(format!("no order {}", notification.order_id)),
            other => return Err(format!("unexpected answer {other:?}")),
        };
        let mut channels = Vec::new();
        if let NotificationKind::Refund { amount_minor, .. } = &notification.kind {
            let provider = self.config.provider.as_ref().ok_or("no payment provider")?;
            ticketd_money::refund::refund_owed(
                provider,
                &order.order.payment_ref,
                *amount_minor,
                &notification.notification_id,
            )
            .await
            .map_err(|e| e.to_string())?;
            channels.push("provider");
        }
        let message = self.message(notification, &order)?;
        if self.config.mailer.is_some() || self.config.sms.is_some() {
            match user {
                Some(user) => channels.extend(
                    self.send(&user, &notification.notification_id, message)
                        .await?,
                ),
                None => {
                    tracing::warn!(user = %notification.user_id, "notification for an unknown user")
                }
            }
        }
        self.mark_sent(notification, &channels).await
    }

    /// Records the notification as sent through `channels`.
    async fn mark_sent(
        &self,
        notification: &Notification,
        channels: &[&str],
    ) -> Result<(), String> {
        let channel = if channels.is_empty() {
            "undeliverable".to_string()
        } else {
            channels.join("+")
        };
        let command = Command::MarkNotificationSent {
            notification_id: notification.notification_id.clone(),
            channel,
        };
        let key = format!("sent:{}", notification.notification_id);
        let written = store::write(&self.cluster, LEADER_CLIENT_ID, &key, &command)
            .await
            .map_err(|e| e.to_string())?;
        match written.outcome {
            Outcome::Done(_) => Ok(()),
            // Voided meanwhile (a reminder of a canceled order): nothing more to do.
            Outcome::Rejected {
                code: Rejection::InvalidState,
                ..
            } => Ok(()),
            Outcome::Rejected { code, detail } => Err(format!("{}: {detail}", code.code())),
        }
    }

    /// The notification's message, from this node's state.
    fn message(&self, notification: &Notification, order: &OrderView) -> Result<Message, String> {
        let title = match (self.local)(&Query::GetEvent {
            event_id: order.order.event_id.clone(),
        }) {
            QueryResult::Event(Some(event)) => event.title,
            _ => order.order.event_id.clone(),
        };
        let starts_at_ms = match (self.local)(&Query::GetDt {
            dt_id: order.order.dt_id.clone(),
        }) {
            QueryResult::Dt(Some(dt)) => Some(dt.starts_at_ms),
            _ => None,
        };
        let context = message::Context {
            title: &title,
            starts_at_ms,
            now_s: (now_ms() / 1000).max(0) as u64,
        };
        message::compose(&notification.kind, order, &context)
    }

    /// Sends `message` by the user's preference (SMS when chosen and a phone is known, email
    /// when chosen or when no SMS goes); the channels used.
    async fn send(
        &self,
        user: &User,
        id: &str,
        message: Message,
    ) -> Result<Vec<&'static str>, String> {
        let phone = user.contact.phone.trim();
        let email = user.contact.email.trim();
        let sms_possible = !phone.is_empty() && self.config.sms.is_some();
        let by_sms = !message.email_only && user.reminder.sms && sms_possible;
        let by_email = !email.is_empty()
            && self.config.mailer.is_some()
            && (user.reminder.email || message.email_only || !by_sms);
        // E-tickets without an email address: an SMS pointing to the app.
        let by_sms = by_sms || (message.email_only && !by_email && sms_possible);
        let mut used = Vec::new();
        if let (true, Some(mailer)) = (by_email, &self.config.mailer) {
            let mail = Email {
                id: id.to_string(),
                to: email.to_string(),
                subject: message.subject.clone(),
                text: message.text.clone(),
                svg_attachments: message.qrs.clone(),
            };
            if delivered(id, "email", mailer.send(&mail).await)? {
                used.push("email");
            }
        }
        if let (true, Some(sms)) = (by_sms, &self.config.sms) {
            let text = if message.email_only {
                format!("{} Open the ticketd app to show them.", message.subject)
            } else {
                message.text.clone()
            };
            let sms_message = Sms {
                id: id.to_string(),
                to: phone.to_string(),
                text,
            };
            if delivered(id, "SMS", sms.send(&sms_message).await)? {
                used.push("sms");
            }
        }
        Ok(used)
    }
}

/// Whether a send went out; a bad address never gets better, so it is logged and not retried;
/// a transient failure is the caller's to retry.
fn delivered(id: &str, channel: &str, sent: Result<(), SendError>) -> Result<bool, String> {
    match sent {
        Ok(()) => Ok(true),
        Err(SendError::Invalid(detail)) => {
            tracing::warn!(notification = id, error = %detail, "{channel} undeliverable");
            Ok(false)
        }
        Err(SendError::Transient(detail)) => Err(format!("{channel}: {detail}")),
    }
}

fn kind_name(kind: &NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Confirmation => "confirmation",
        NotificationKind::ETickets => "etickets",
        NotificationKind::Reminder => "reminder",
        NotificationKind::Cancellation => "cancellation",
        NotificationKind::Refund { .. } => "refund",
    }
}
