//! The money rule as one pure function: what to do next with a payment, given what the provider
//! says of its intent, what the store says of the payment and whether the hold can still take it.
//!
//! The rule: **capture only a payment the store confirmed; void only a payment the store failed
//! or can never start.** The store serializes every decision, so whoever acts second (the
//! buyer's saga, a concurrent retry, the reconciler, a new leader's reconciler) reads the
//! decision and follows it. The purchase saga (`saga.rs`) and the reconciler (`reconciler.rs`)
//! both ask [`decide`], act, and ask again until it says [`Action::Settled`]; this module
//! depends on neither.

use ticketd_store::types::{Payment, PaymentStatus};

use crate::provider::{Intent, IntentStatus};

/// Whether the hold can still take the payment: what the caller learned of it beside the
/// payment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldView {
    /// The hold is live and the store has not refused this payment: a purchase may still
    /// complete with it.
    Open,
    /// The hold can never take this payment: it is not live, or the store refused a step of the
    /// purchase for good.
    Closed,
    /// The payment was started in the store only by the reconciler's fence (a fence cut short by
    /// a crash, recognized by replaying the fence's idempotency key): no buyer is waiting on it.
    Fenced,
}

/// Why a pending payment is failed in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The hold can never take it ([`HoldView::Closed`]).
    Refused,
    /// The fence started it ([`HoldView::Fenced`]).
    Fenced,
    /// The provider voided it.
    VoidedAtProvider,
    /// The provider authorized another amount or currency than the store's payment.
    AmountMismatch,
    /// The provider captured it while the store has no order for it.
    CapturedWithoutOrder,
}

impl FailReason {
    /// The reason as the store records it.
    pub fn text(self) -> &'static str {
        match self {
            FailReason::Refused => "purchase refused",
            FailReason::Fenced => "abandoned before the store heard of it",
            FailReason::VoidedAtProvider => "voided at the provider",
            FailReason::AmountMismatch => "the provider authorized another amount",
            FailReason::CapturedWithoutOrder => "captured at the provider without an order",
        }
    }
}

/// The next step for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Capture at the provider: the store confirmed an order with this payment.
    Capture {
        /// The order the payment confirmed.
        order_id: String,
    },
    /// Turn the pinned hold into an order (`ConfirmPurchase`), then ask again.
    Complete,
    /// Record the payment as failed in the store (`PaymentFailed`, which unpins the hold), then
    /// ask again.
    FailInStore(FailReason),
    /// Pin the hold with the payment under the fence's own key (`StartPayment`), so no late
    /// purchase can start it after the void, then ask again.
    Fence,
    /// Void the authorization at the provider.
    Void,
    /// Refund what the provider captured: money without an order (reported as an anomaly).
    RefundOrphan,
    /// A contradiction no step heals (an order whose payment the provider voided): report it,
    /// change nothing.
    Anomaly,
    /// Nothing (more) to do: the provider and the store agree.
    Settled,
}

/// What to do next with the payment `payment` (the store's; `None`: the store never heard of
/// it) of the provider's intent `intent`, the hold being as `hold` says.
pub fn decide(intent: &Intent, payment: Option<&Payment>, hold: HoldView) -> Action {
    let status = payment.map(|p| &p.status);
    match intent.status {
        IntentStatus::RequiresCapture => match status {
            Some(PaymentStatus::Confirmed { order_id }) => Action::Capture {
                order_id: order_id.clone(),
            },
            Some(PaymentStatus::Pending) => {
                let p = payment.expect("a status comes with its payment");
                if p.amount_minor != intent.amount || p.currency != intent.currency {
                    Action::FailInStore(FailReason::AmountMismatch)
                } else {
                    match hold {
                        HoldView::Open => Action::Complete,
                        HoldView::Closed => Action::FailInStore(FailReason::Refused),
                        HoldView::Fenced => Action::FailInStore(FailReason::Fenced),
                    }
                }
            }
            Some(PaymentStatus::Failed { .. }) => Action::Void,
            None => match hold {
                HoldView::Open => Action::Fence,
                HoldView::Closed | HoldView::Fenced => Action::Void,
            },
        },
        IntentStatus::Succeeded => match status {
            // Refunds the order owes are in the outbox: the dispatcher makes them.
            Some(PaymentStatus::Confirmed { .. }) => Action::Settled,
            // Fail it first, so no order can come of it after the refund.
            Some(PaymentStatus::Pending) => Action::FailInStore(FailReason::CapturedWithoutOrder),
            Some(PaymentStatus::Failed { .. }) | None if intent.net_captured() > 0 => {
                Action::RefundOrphan
            }
            Some(PaymentStatus::Failed { .. }) | None => Action::Settled,
        },
        IntentStatus::Refunded => Action::Settled,
        IntentStatus::Canceled => match status {
            Some(PaymentStatus::Pending) => Action::FailInStore(FailReason::VoidedAtProvider),
            Some(PaymentStatus::Confirmed { .. }) => Action::Anomaly,
            Some(PaymentStatus::Failed { .. }) | None => Action::Settled,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The provider's side of a row.
    #[derive(Clone, Copy)]
    enum Provider {
        Authorized,
        AuthorizedOtherAmount,
        Captured,
        CapturedThenRefunded,
        Voided,
    }

    /// The store's side of a row.
    #[derive(Clone, Copy)]
    enum Store {
        None,
        Pending,
        Confirmed,
        Failed,
    }

    fn intent(provider: Provider) -> Intent {
        let (status, amount, captured, refunded) = match provider {
            Provider::Authorized => (IntentStatus::RequiresCapture, 5_000, 0, 0),
            Provider::AuthorizedOtherAmount => (IntentStatus::RequiresCapture, 4_000, 0, 0),
            Provider::Captured => (IntentStatus::Succeeded, 5_000, 5_000, 0),
            Provider::CapturedThenRefunded => (IntentStatus::Refunded, 5_000, 5_000, 5_000),
            Provider::Voided => (IntentStatus::Canceled, 5_000, 0, 0),
        };
        Intent {
            id: "pi_1".into(),
            amount,
            currency: "EUR".into(),
            status,
            metadata: [("hold_id".to_string(), "h-1".to_string())].into(),
            amount_refunded: refunded,
            amount_captured: captured,
            created_ms: 0,
        }
    }

    fn payment(store: Store) -> Option<Payment> {
        let status = match store {
            Store::None => return None,
            Store::Pending => PaymentStatus::Pending,
            Store::Confirmed => PaymentStatus::Confirmed {
                order_id: "o-1".into(),
            },
            Store::Failed => PaymentStatus::Failed {
                reason: "refused".into(),
                at_ms: 1,
            },
        };
        Some(Payment {
            payment_ref: "pi_1".into(),
            hold_id: "h-1".into(),
            user_id: "u-1".into(),
            amount_minor: 5_000,
            currency: "EUR".into(),
            started_at_ms: 0,
            status,
        })
    }

    fn capture() -> Action {
        Action::Capture {
            order_id: "o-1".into(),
        }
    }

    /// Every combination of the provider's status, the store's payment and the hold, and the
    /// step the rule asks for. Rows with `ANY` hold repeat for each hold view.
    #[test]
    fn the_decision_table() {
        use Action::{Anomaly, Complete, FailInStore, Fence, RefundOrphan, Settled, Void};
        use FailReason::{AmountMismatch, CapturedWithoutOrder, Refused, VoidedAtProvider};
        use HoldView::{Closed, Open};
        const ANY: [HoldView; 3] = [Open, Closed, HoldView::Fenced];
        let rows: Vec<(Provider, Store, &[HoldView], Action)> = vec![
            // Authorized: capture what the store confirmed, complete what it pinned and can
            // still take, void what it failed or can never start.
            (Provider::Authorized, Store::Confirmed, &ANY, capture()),
            (Provider::Authorized, Store::Pending, &[Open], Complete),
            (
                Provider::Authorized,
                Store::Pending,
                &[Closed],
                FailInStore(Refused),
            ),
            (
                Provider::Authorized,
                Store::Pending,
                &[HoldView::Fenced],
                FailInStore(FailReason::Fenced),
            ),
            (
                Provider::AuthorizedOtherAmount,
                Store::Pending,
                &ANY,
                FailInStore(AmountMismatch),
            ),
            (Provider::Authorized, Store::Failed, &ANY, Void),
            // Unknown to the store: a nack may have been answered, so never complete it. Fence
            // it while the hold could still take it, void it once nothing can start it.
            (Provider::Authorized, Store::None, &[Open], Fence),
            (
                Provider::Authorized,
                Store::None,
                &[Closed, HoldView::Fenced],
                Void,
            ),
            // Captured: money and tickets together, or the money goes back.
            (Provider::Captured, Store::Confirmed, &ANY, Settled),
            (
                Provider::Captured,
                Store::Pending,
                &ANY,
                FailInStore(CapturedWithoutOrder),
            ),
            (Provider::Captured, Store::Failed, &ANY, RefundOrphan),
            (Provider::Captured, Store::None, &ANY, RefundOrphan),
            // Refunded in full: nothing is left to move.
            (
                Provider::CapturedThenRefunded,
                Store::Confirmed,
                &ANY,
                Settled,
            ),
            (
                Provider::CapturedThenRefunded,
                Store::Pending,
                &ANY,
                Settled,
            ),
            (Provider::CapturedThenRefunded, Store::Failed, &ANY, Settled),
            (Provider::CapturedThenRefunded, Store::None, &ANY, Settled),
            // Voided: the store follows; an order without its money is reported, never healed.
            (
                Provider::Voided,
                Store::Pending,
                &ANY,
                FailInStore(VoidedAtProvider),
            ),
            (Provider::Voided, Store::Confirmed, &ANY, Anomaly),
            (Provider::Voided, Store::Failed, &ANY, Settled),
            (Provider::Voided, Store::None, &ANY, Settled),
        ];
        for (provider, store, holds, want) in rows {
            for &hold in holds {
                let got = decide(&intent(provider), payment(store).as_ref(), hold);
                assert_eq!(
                    got,
                    want,
                    "row {:?}",
                    (intent(provider).status, store_name(store), hold)
                );
            }
        }
    }

    /// A captured intent whose captured money was already refunded in part by an earlier
    /// pass is refunded only while something is left.
    #[test]
    fn an_orphan_refunded_already_is_settled() {
        let mut i = intent(Provider::Captured);
        i.amount_refunded = i.amount_captured;
        assert_eq!(decide(&i, None, HoldView::Open), Action::Settled);
    }

    fn store_name(store: Store) -> &'static str {
        match store {
            Store::None => "none",
            Store::Pending => "pending",
            Store::Confirmed => "confirmed",
            Store::Failed => "failed",
        }
    }
}
