//! The purchase saga, run by the HTTP API for a buyer: authorize at the provider with the hold id
//! as idempotency key -> pin the hold with the payment (`StartPayment`) -> one Raft command turns
//! hold into order + tickets (`ConfirmPurchase`, refused if the hold is gone or the amount
//! differs) -> capture.
//!
//! When the store refuses a step, the saga asks [`decide`] what the payment needs, the hold
//! being [`HoldView::Closed`] for it: a payment the store confirmed (through a concurrent
//! attempt or the reconciler) is captured and its order acked; a pending one is failed in the
//! store, then voided; the buyer gets the refusal. A crash between the steps leaves an
//! authorized intent whose metadata names the hold: the leader's reconciler
//! ([`crate::reconciler`]) closes that gap with the same rule.

use ticketd_raft::client::{ClientError, ClusterClient, Consistency};
use ticketd_store::command::Done;
use ticketd_store::types::{Hold, PaymentStatus};
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::decide::{decide, Action, HoldView};
#[cfg(feature = "failpoints")]
use crate::fault::{SagaFault, SagaStep};
use crate::provider::{
    CreateIntent, HttpProvider, Intent, IntentStatus, PaymentError, PaymentProvider,
};
use crate::store;

/// Times the saga reads the payment back and follows the store's decision before it gives up
/// with [`PurchaseError::InFlight`].
const SETTLE_ROUNDS_MAX: usize = 3;

/// One purchase attempt of a buyer, as the API derived it from the request.
pub struct Purchase<'a> {
    /// The cluster.
    pub cluster: &'a ClusterClient,
    /// The payment provider.
    pub provider: &'a HttpProvider,
    /// The buyer, as the store's client id.
    pub user_id: &'a str,
    /// The request's idempotency key: each step's key derives from it, so a retry proposes the
    /// very same commands.
    pub key: &'a str,
    /// The hold to buy, as read linearizably (the buyer's, its total checked).
    pub hold: &'a Hold,
    /// The provider's payment-method token.
    pub payment_method: &'a str,
    /// The order's id, derived from the idempotency key.
    pub order_id: String,
    /// The seed of the tickets' code secrets, derived from the idempotency key.
    pub secret_seed: Vec<u8>,
    /// FAULT INJECTION for crash tests: what to do after a step.
    #[cfg(feature = "failpoints")]
    pub fault: Option<SagaFault>,
}

/// A confirmed purchase: the store's answer and the log index it committed at.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// `Done::PurchaseConfirmed` with the order and its tickets.
    pub done: Done,
    /// The log index of the order.
    pub log_index: u64,
}

/// Why the store refused the purchase: the buyer's nack.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The store refused a step with this rejection.
    #[error("{}: {detail}", code.code())]
    Store {
        /// The rejection.
        code: Rejection,
        /// What the store said.
        detail: String,
    },
    /// The provider had voided the payment before (a refused or abandoned attempt).
    #[error("the payment was voided; place a new hold")]
    Voided,
    /// The cluster refused the request itself (not an unknown outcome).
    #[error("{0}")]
    Cluster(ClientError),
    /// The provider's answer to the authorization does not match the hold (amount, currency,
    /// the hold it names, or a status an authorization cannot have): its word is not taken,
    /// the store never hears of the payment and the intent is voided.
    #[error("the payment provider's answer does not match the hold: {0}")]
    Mismatch(String),
}

impl Refusal {
    /// The refusal's stable code (what the store records as the payment's failure).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Store { code, .. } => code.code(),
            Refusal::Voided => "PAYMENT_FAILED",
            Refusal::Cluster(_) => "CLUSTER_REFUSED",
            Refusal::Mismatch(_) => "PROVIDER_MISMATCH",
        }
    }
}

/// How a purchase ended without an order.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// The provider did not authorize: declined, refused, or no answer (a nack: the store never
    /// heard of the payment, so the reconciler voids whatever was authorized).
    #[error("{0}")]
    Payment(PaymentError),
    /// The store refused; the payment was failed in the store and voided.
    #[error("{0}")]
    Refused(Refusal),
    /// The cluster did not answer or its outcome is unknown: retry with the same key.
    #[error("{0}")]
    Cluster(ClientError),
    /// The payment is still in flight (another attempt is at it): retry with the same key.
    #[error("the payment is still in flight")]
    InFlight,
    /// The store's state contradicts itself (a payment names a missing order).
    #[error("{0}")]
    Broken(String),
}

/// Whether the provider's answer to an authorization is one for `hold`: an intent with an id,
/// the hold's amount and currency, the hold named in its metadata, and a status an intent of
/// this idempotency key can have (authorized; captured or refunded by an earlier attempt of
/// the same purchase; voided). Anything else is a provider to distrust, whatever it says.
pub fn answer_matches(intent: &Intent, hold: &Hold) -> Result<(), String> {
    if intent.id.is_empty() || intent.id.len() > ticketd_store::limits::ID_LEN_MAX {
        return Err(format!("an intent id of {} bytes", intent.id.len()));
    }
    // The provider's own strings are not echoed: they may be anything.
    if intent.amount != hold.total_minor {
        return Err(format!(
            "authorized {} minor units, the hold is {}",
            intent.amount, hold.total_minor
        ));
    }
    if intent.currency != hold.currency {
        return Err(format!(
            "authorized in another currency than {}",
            hold.currency
        ));
    }
    if intent.metadata.get("hold_id") != Some(&hold.hold_id) {
        return Err("the intent names another hold".into());
    }
    if intent.amount_captured < 0
        || intent.amount_refunded < 0
        || intent.amount_captured > intent.amount
        || intent.amount_refunded > intent.amount_captured
    {
        return Err(format!(
            "captured {} and refunded {} of {}",
            intent.amount_captured, intent.amount_refunded, intent.amount
        ));
    }
    Ok(())
}

impl Purchase<'_> {
    /// Runs the saga: the order, or why there is none.
    pub async fn run(&self) -> Result<Confirmed, PurchaseError> {
        let intent = self.authorize().await?;
        self.fault_after_authorize().await;
        if let Err(mismatch) = answer_matches(&intent, self.hold) {
            tracing::warn!(payment = %intent.id, hold = %self.hold.hold_id, %mismatch, "the provider's answer does not match the hold");
            metrics::counter!("ticketd_provider_mismatches_total").increment(1);
            return self.settle(&intent, Refusal::Mismatch(mismatch)).await;
        }
        if intent.status == IntentStatus::Canceled {
            // Voided earlier: only an order the store already made with it counts.
            return self.settle(&intent, Refusal::Voided).await;
        }
        if let Err(refusal) = self.start(&intent).await? {
            return self.settle(&intent, refusal).await;
        }
        self.fault_after_start().await;
        let confirmed = match self.confirm(&intent).await? {
            Ok(confirmed) => confirmed,
            Err(refusal) => return self.settle(&intent, refusal).await,
        };
        self.fault_after_confirm().await;
        // Idempotent; a failure here is closed by the reconciler (an order without capture).
        self.capture(&intent).await;
        Ok(confirmed)
    }

    /// Step 1, authorization: the hold id is the provider's idempotency key, so a retry finds
    /// the same intent (checked against the hold by [`answer_matches`] before any use).
    async fn authorize(&self) -> Result<Intent, PurchaseError> {
        let hold = self.hold;
        let request = CreateIntent {
            amount: hold.total_minor,
            currency: hold.currency.clone(),
            payment_method: self.payment_method.to_string(),
            metadata: [
                ("hold_id".to_string(), hold.hold_id.clone()),
                ("user_id".to_string(), self.user_id.to_string()),
                ("dt_id".to_string(), hold.dt_id.clone()),
            ]
            .into(),
        };
        self.provider
            .authorize(&hold.hold_id, &request)
            .await
            .map_err(PurchaseError::Payment)
    }

    /// Step 2, the pin: `StartPayment`. A refusal with the payment pending (started by a
    /// concurrent attempt) goes on; any other refusal is the store's decision.
    async fn start(&self, intent: &Intent) -> Result<Result<(), Refusal>, PurchaseError> {
        let command = Command::StartPayment {
            hold_id: self.hold.hold_id.clone(),
            user_id: self.user_id.to_string(),
            payment_ref: intent.id.clone(),
            amount_minor: self.hold.total_minor,
            currency: self.hold.currency.clone(),
        };
        let refusal = match self.propose("start", &command).await? {
            Ok(_) => return Ok(Ok(())),
            Err(refusal) => refusal,
        };
        let payment = store::payment(self.cluster, &intent.id)
            .await
            .map_err(PurchaseError::Cluster)?;
        match payment.map(|p| p.status) {
            Some(PaymentStatus::Pending) => Ok(Ok(())),
            _ => Ok(Err(refusal)),
        }
    }

    /// Step 3: hold -> order + tickets, in one command.
    async fn confirm(&self, intent: &Intent) -> Result<Result<Confirmed, Refusal>, PurchaseError> {
        let command = Command::ConfirmPurchase {
            hold_id: self.hold.hold_id.clone(),
            order_id: self.order_id.clone(),
            payment_ref: intent.id.clone(),
            amount_minor: self.hold.total_minor,
            currency: self.hold.currency.clone(),
            secret_seed: self.secret_seed.clone(),
        };
        self.propose("confirm", &command).await
    }

    /// Proposes a step under the key `<key>:<step>`. An unknown outcome is the caller's to
    /// retry (the order may exist: this key's retry or the reconciler settles it); a refusal
    /// is returned for the saga to settle.
    async fn propose(
        &self,
        step: &str,
        command: &Command,
    ) -> Result<Result<Confirmed, Refusal>, PurchaseError> {
        let key = format!("{}:{step}", self.key);
        match store::write(self.cluster, self.user_id, &key, command).await {
            Ok(store::Written {
                outcome: Outcome::Done(done),
                log_index,
                ..
            }) => Ok(Ok(Confirmed { done, log_index })),
            Ok(store::Written {
                outcome: Outcome::Rejected { code, detail },
                ..
            }) => Ok(Err(Refusal::Store { code, detail })),
            Err(e) if store::is_unknown(&e) => Err(PurchaseError::Cluster(e)),
            Err(e) => Ok(Err(Refusal::Cluster(e))),
        }
    }

    /// After the store refused a step: follow the store's decision for the payment, the hold
    /// closed to it. An order the store confirmed with it is acked; otherwise the buyer gets
    /// `refusal`.
    async fn settle(&self, intent: &Intent, refusal: Refusal) -> Result<Confirmed, PurchaseError> {
        for _ in 0..SETTLE_ROUNDS_MAX {
            let payment = store::payment(self.cluster, &intent.id)
                .await
                .map_err(PurchaseError::Cluster)?;
            let action = decide(intent, payment.as_ref(), HoldView::Closed);
            match &action {
                Action::Capture { order_id } => {
                    self.capture(intent).await;
                    return self.ack_existing(intent, order_id).await;
                }
                Action::FailInStore(reason) => {
                    let command = Command::PaymentFailed {
                        hold_id: self.hold.hold_id.clone(),
                        payment_ref: intent.id.clone(),
                        reason: format!("{}: {}", reason.text(), refusal.code()),
                    };
                    let key = format!("{}:failed", self.key);
                    if let Err(e) = store::write(self.cluster, self.user_id, &key, &command).await {
                        if store::is_unknown(&e) {
                            return Err(PurchaseError::Cluster(e));
                        }
                    }
                    // Read again: failed now, or confirmed by someone quicker.
                    continue;
                }
                Action::Void => {
                    self.void(intent).await;
                    return Err(PurchaseError::Refused(refusal));
                }
                Action::Anomaly => {
                    tracing::error!(payment = %intent.id, "an order's payment is voided");
                }
                // Money that moved already (captured or refunded) and the reconciler's own
                // steps are not the buyer's saga's to take.
                Action::Settled | Action::RefundOrphan | Action::Complete | Action::Fence => {}
            }
            // The buyer's answer follows the store: the order its payment confirmed, or the
            // refusal.
            return match payment.map(|p| p.status) {
                Some(PaymentStatus::Confirmed { order_id }) => {
                    self.ack_existing(intent, &order_id).await
                }
                _ if matches!(action, Action::Complete | Action::Fence) => {
                    Err(PurchaseError::InFlight)
                }
                _ => Err(PurchaseError::Refused(refusal)),
            };
        }
        Err(PurchaseError::InFlight)
    }

    /// The order the store made with this payment.
    async fn ack_existing(
        &self,
        intent: &Intent,
        order_id: &str,
    ) -> Result<Confirmed, PurchaseError> {
        let query = Query::GetOrder {
            order_id: order_id.to_string(),
        };
        let answer = self
            .cluster
            .read(&query, Consistency::Linearizable)
            .await
            .map_err(PurchaseError::Cluster)?;
        let QueryResult::Order(Some(view)) = answer.result else {
            return Err(PurchaseError::Broken(format!(
                "payment {} names order {order_id}, which is missing",
                intent.id
            )));
        };
        let order = view.order;
        Ok(Confirmed {
            done: Done::PurchaseConfirmed {
                order_id: order.order_id.clone(),
                ticket_ids: order.ticket_ids.clone(),
                total_minor: order.total_minor,
                currency: order.currency.clone(),
            },
            log_index: order.created_index,
        })
    }

    async fn capture(&self, intent: &Intent) {
        if let Err(e) = self.provider.capture(&intent.id).await {
            tracing::warn!(payment = %intent.id, error = %e, "capture failed; the reconciler will capture");
        }
    }

    async fn void(&self, intent: &Intent) {
        #[cfg(feature = "failpoints")]
        if self.fault == Some(SagaFault::SkipVoid) {
            tracing::error!(payment = %intent.id, "FAULT INJECTION: the refused authorization is not voided");
            return;
        }
        if let Err(e) = self.provider.cancel(&intent.id).await {
            tracing::warn!(payment = %intent.id, error = %e, "void failed; the reconciler will void");
        }
    }

    #[cfg(feature = "failpoints")]
    async fn fault_after(&self, step: SagaStep) {
        SagaFault::after(self.fault, step).await;
    }

    async fn fault_after_authorize(&self) {
        #[cfg(feature = "failpoints")]
        self.fault_after(SagaStep::Authorize).await;
    }

    async fn fault_after_start(&self) {
        #[cfg(feature = "failpoints")]
        self.fault_after(SagaStep::Start).await;
    }

    async fn fault_after_confirm(&self) {
        #[cfg(feature = "failpoints")]
        self.fault_after(SagaStep::Confirm).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::IntentStatus;
    use ticketd_store::types::HoldStatus;

    fn hold() -> Hold {
        Hold {
            hold_id: "h-1".into(),
            dt_id: "d-1".into(),
            user_id: "u-1".into(),
            items: vec![],
            subtotal_minor: 4_500,
            fee_minor: 500,
            total_minor: 5_000,
            currency: "EUR".into(),
            created_at_ms: 0,
            expires_at_ms: 600_000,
            pinned_until_ms: None,
            payment_ref: None,
            payment_attempts: 0,
            status: HoldStatus::Live,
        }
    }

    fn answer() -> Intent {
        Intent {
            id: "pi_1".into(),
            amount: 5_000,
            currency: "EUR".into(),
            status: IntentStatus::RequiresCapture,
            metadata: [("hold_id".to_string(), "h-1".to_string())].into(),
            amount_refunded: 0,
            amount_captured: 0,
            created_ms: 0,
        }
    }

    #[test]
    fn a_provider_answer_is_taken_only_when_it_is_for_the_hold() {
        let h = hold();
        assert_eq!(answer_matches(&answer(), &h), Ok(()));
        let captured = Intent {
            status: IntentStatus::Succeeded,
            amount_captured: 5_000,
            ..answer()
        };
        assert_eq!(
            answer_matches(&captured, &h),
            Ok(()),
            "an earlier attempt's capture"
        );
        let wrong: [(&str, Intent); 7] = [
            (
                "amount",
                Intent {
                    amount: 5_001,
                    ..answer()
                },
            ),
            (
                "currency",
                Intent {
                    currency: "XXX".repeat(1000),
                    ..answer()
                },
            ),
            (
                "hold",
                Intent {
                    metadata: [("hold_id".into(), "h-2".into())].into(),
                    ..answer()
                },
            ),
            (
                "no hold",
                Intent {
                    metadata: Default::default(),
                    ..answer()
                },
            ),
            (
                "no id",
                Intent {
                    id: String::new(),
                    ..answer()
                },
            ),
            (
                "over-captured",
                Intent {
                    amount_captured: 5_001,
                    ..answer()
                },
            ),
            (
                "over-refunded",
                Intent {
                    amount_captured: 10,
                    amount_refunded: 11,
                    ..answer()
                },
            ),
        ];
        for (what, i) in wrong {
            let e = answer_matches(&i, &h).expect_err(what);
            assert!(
                e.len() < 100,
                "{what}: the provider's strings are not echoed: {e}"
            );
        }
    }
}
