//! The money checker of a full-stack run: the payment provider's books, read from the
//! provider's own state (never through the store), against the store's orders and what buyers
//! were told, once the run healed and settled.
//!
//! Per hold: either a confirmed order whose intent captured its total and holds its total less
//! the refunds made, every other intent of the hold voided; or no order and every intent voided
//! (or none created). Every refund the store owes is paid exactly once, under its notification's
//! id; the provider's net per seller equals the store's ledger; no purchase acknowledged to a
//! buyer vanishes; no purchase refused to a buyer becomes tickets.

use std::collections::{BTreeMap, BTreeSet};

use ticketd_store::command::OrderView;

/// One intent as the provider's books hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIntent {
    /// The provider's id (the store's payment ref).
    pub id: String,
    /// The hold its metadata names, if any.
    pub hold_id: Option<String>,
    /// Authorized amount, minor units.
    pub amount: i64,
    /// Captured.
    pub captured: i64,
    /// Refunded.
    pub refunded: i64,
    /// Voided (canceled) at the provider.
    pub voided: bool,
}

impl ProviderIntent {
    fn net(&self) -> i64 {
        self.captured - self.refunded
    }
}

/// One refund as the provider's books hold it: its idempotency key, the intent, the amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    /// The caller's key (a refund notification's id, or `orphan:{intent}`).
    pub key: String,
    /// The intent refunded.
    pub intent_id: String,
    /// Amount, minor units.
    pub amount: i64,
}

/// A refund the store owes: its notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOwed {
    /// The `Refund` notification's id (the provider's key).
    pub notification_id: String,
    /// The order it refunds.
    pub order_id: String,
    /// Amount, minor units.
    pub amount: i64,
}

/// What the store says after the run.
#[derive(Debug, Clone, Default)]
pub struct StoreBooks {
    /// Every order.
    pub orders: Vec<OrderView>,
    /// Every refund owed (sent or not).
    pub refunds_owed: Vec<RefundOwed>,
    /// The seller of each event.
    pub seller_of_event: BTreeMap<String, String>,
    /// Each seller's ledger: what its orders hold, net of refunds, minor units.
    pub seller_net: BTreeMap<String, i64>,
}

/// What buyers were told.
#[derive(Debug, Clone, Default)]
pub struct BuyerAnswers {
    /// Purchases acknowledged: hold -> order.
    pub acked: BTreeMap<String, String>,
    /// Purchases refused for sure (a definite "no": declined, refused by the store).
    pub nacked: BTreeSet<String>,
}

/// What the money checker counted and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MoneyReport {
    /// Holds with an intent or an order.
    pub holds: usize,
    /// Orders.
    pub purchases: usize,
    /// Intents captured.
    pub captures: usize,
    /// Intents voided.
    pub voids: usize,
    /// Refunds made (provider side).
    pub refunds: usize,
    /// Purchases acknowledged to buyers.
    pub acked: usize,
    /// Purchases refused to buyers.
    pub nacked: usize,
    /// Everything wrong, one line each.
    pub anomalies: Vec<String>,
}

/// Judges the books.
pub fn check_money(
    provider: &[ProviderIntent],
    refunds: &[ProviderRefund],
    store: &StoreBooks,
    answers: &BuyerAnswers,
) -> MoneyReport {
    let mut r = MoneyReport {
        purchases: store.orders.len(),
        captures: provider.iter().filter(|i| i.captured > 0).count(),
        voids: provider.iter().filter(|i| i.voided).count(),
        refunds: refunds.len(),
        acked: answers.acked.len(),
        nacked: answers.nacked.len(),
        ..MoneyReport::default()
    };
    let order_of_hold: BTreeMap<&str, &OrderView> = store
        .orders
        .iter()
        .map(|o| (o.order.hold_id.as_str(), o))
        .collect();
    let mut intents_of_hold: BTreeMap<&str, Vec<&ProviderIntent>> = BTreeMap::new();
    for i in provider {
        match &i.hold_id {
            Some(h) => intents_of_hold.entry(h.as_str()).or_default().push(i),
            None => r.anomalies.push(format!("intent {} names no hold", i.id)),
        }
    }
    let holds: BTreeSet<&str> = intents_of_hold
        .keys()
        .copied()
        .chain(order_of_hold.keys().copied())
        .collect();
    r.holds = holds.len();
    for hold in holds {
        let intents = intents_of_hold.get(hold).map(Vec::as_slice).unwrap_or(&[]);
        match order_of_hold.get(hold) {
            Some(o) => paid_hold(&mut r, o, intents),
            None => unpaid_hold(&mut r, hold, intents),
        }
    }
    refunds_paid_once(&mut r, refunds, store);
    seller_nets(&mut r, provider, store);
    for (hold, order) in &answers.acked {
        match order_of_hold.get(hold.as_str()) {
            Some(o) if o.order.order_id == *order => {}
            Some(o) => r.anomalies.push(format!(
                "hold {hold}: the buyer was told order {order}, the store has {}",
                o.order.order_id
            )),
            None => r.anomalies.push(format!(
                "hold {hold}: order {order} acked to the buyer vanished"
            )),
        }
    }
    for hold in &answers.nacked {
        if let Some(o) = order_of_hold.get(hold.as_str()) {
            r.anomalies.push(format!(
                "hold {hold}: refused to the buyer, yet order {} exists",
                o.order.order_id
            ));
        }
    }
    r
}

/// An order's hold: its intent captured the total and holds it less the refunds; every other
/// intent of the hold is voided with nothing captured.
fn paid_hold(r: &mut MoneyReport, o: &OrderView, intents: &[&ProviderIntent]) {
    let order = &o.order;
    let Some(paid) = intents.iter().find(|i| i.id == order.payment_ref) else {
        r.anomalies.push(format!(
            "order {}: tickets without money (no intent {} at the provider)",
            order.order_id, order.payment_ref
        ));
        return;
    };
    if paid.captured != order.total_minor {
        r.anomalies.push(format!(
            "order {}: captured {} of a total of {}",
            order.order_id, paid.captured, order.total_minor
        ));
    }
    if paid.net() != order.total_minor - order.refunded_minor {
        r.anomalies.push(format!(
            "order {}: the provider holds {}, the store says {} less {} refunded",
            order.order_id,
            paid.net(),
            order.total_minor,
            order.refunded_minor
        ));
    }
    for other in intents.iter().filter(|i| i.id != order.payment_ref) {
        if !other.voided || other.net() != 0 {
            r.anomalies.push(format!(
                "order {}: another intent {} of its hold is not voided ({other:?})",
                order.order_id, other.id
            ));
        }
    }
}

/// A hold without an order: every intent voided, nothing captured (or none created).
fn unpaid_hold(r: &mut MoneyReport, hold: &str, intents: &[&ProviderIntent]) {
    for i in intents {
        if i.net() != 0 {
            r.anomalies.push(format!(
                "hold {hold}: money without tickets (intent {} holds {})",
                i.id,
                i.net()
            ));
        } else if !i.voided && i.captured == 0 {
            r.anomalies.push(format!(
                "hold {hold}: intent {} left authorized without an order",
                i.id
            ));
        }
    }
}

/// Every refund owed is made once, under its notification's id, for its amount, on its
/// order's intent; no refund keyed by a notification is made that the store does not owe.
fn refunds_paid_once(r: &mut MoneyReport, refunds: &[ProviderRefund], store: &StoreBooks) {
    let mut by_key: BTreeMap<&str, Vec<&ProviderRefund>> = BTreeMap::new();
    for f in refunds {
        by_key.entry(f.key.as_str()).or_default().push(f);
    }
    let intent_of_order: BTreeMap<&str, &str> = store
        .orders
        .iter()
        .map(|o| (o.order.order_id.as_str(), o.order.payment_ref.as_str()))
        .collect();
    let owed: BTreeSet<&str> = store
        .refunds_owed
        .iter()
        .map(|o| o.notification_id.as_str())
        .collect();
    for o in &store.refunds_owed {
        match by_key.get(o.notification_id.as_str()).map(Vec::as_slice) {
            None | Some([]) => r.anomalies.push(format!(
                "refund {} of order {} ({}) never paid",
                o.notification_id, o.order_id, o.amount
            )),
            Some([one]) => {
                if one.amount != o.amount
                    || intent_of_order.get(o.order_id.as_str()) != Some(&one.intent_id.as_str())
                {
                    r.anomalies.push(format!(
                        "refund {}: owed {} on order {}, paid {one:?}",
                        o.notification_id, o.amount, o.order_id
                    ));
                }
            }
            Some(many) => r.anomalies.push(format!(
                "refund {} paid {} times",
                o.notification_id,
                many.len()
            )),
        }
    }
    for f in refunds {
        if !f.key.starts_with("orphan:") && !owed.contains(f.key.as_str()) {
            r.anomalies
                .push(format!("refund {} paid but never owed: {f:?}", f.key));
        }
    }
}

/// The provider's net per seller (through each order's event) equals the store's ledger.
fn seller_nets(r: &mut MoneyReport, provider: &[ProviderIntent], store: &StoreBooks) {
    let intents: BTreeMap<&str, &ProviderIntent> =
        provider.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut at_provider: BTreeMap<&str, i64> = BTreeMap::new();
    for o in &store.orders {
        let Some(seller) = store.seller_of_event.get(&o.order.event_id) else {
            r.anomalies
                .push(format!("order {}: event of no seller", o.order.order_id));
            continue;
        };
        let net = intents
            .get(o.order.payment_ref.as_str())
            .map_or(0, |i| i.net());
        *at_provider.entry(seller.as_str()).or_default() += net;
    }
    let sellers: BTreeSet<&str> = at_provider
        .keys()
        .copied()
        .chain(store.seller_net.keys().map(String::as_str))
        .collect();
    for s in sellers {
        let provider_net = at_provider.get(s).copied().unwrap_or(0);
        let ledger = store.seller_net.get(s).copied().unwrap_or(0);
        if provider_net != ledger {
            r.anomalies.push(format!(
                "seller {s}: the provider holds {provider_net}, the ledger says {ledger}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketd_store::types::{Order, OrderStatus};

    fn order(id: &str, hold: &str, pay: &str, total: i64, refunded: i64) -> OrderView {
        OrderView {
            order: Order {
                order_id: id.into(),
                user_id: "u".into(),
                event_id: "e1".into(),
                dt_id: "d1".into(),
                hold_id: hold.into(),
                payment_ref: pay.into(),
                ticket_ids: vec![],
                subtotal_minor: total,
                fee_minor: 0,
                total_minor: total,
                refunded_minor: refunded,
                currency: "EUR".into(),
                status: OrderStatus::Confirmed,
                created_at_ms: 0,
                created_index: 1,
            },
            tickets: vec![],
        }
    }

    fn intent(id: &str, hold: &str, amount: i64, captured: i64, refunded: i64) -> ProviderIntent {
        ProviderIntent {
            id: id.into(),
            hold_id: Some(hold.into()),
            amount,
            captured,
            refunded,
            voided: captured == 0,
        }
    }

    /// A healthy run: h1 bought (and partly refunded), h2 voided after a decline, h3 never paid.
    fn healthy() -> (
        Vec<ProviderIntent>,
        Vec<ProviderRefund>,
        StoreBooks,
        BuyerAnswers,
    ) {
        let provider = vec![
            intent("pi_1", "h1", 100, 100, 40),
            intent("pi_2", "h1", 100, 0, 0),
            intent("pi_3", "h2", 50, 0, 0),
        ];
        let refunds = vec![ProviderRefund {
            key: "n-9-2".into(),
            intent_id: "pi_1".into(),
            amount: 40,
        }];
        let store = StoreBooks {
            orders: vec![order("o1", "h1", "pi_1", 100, 40)],
            refunds_owed: vec![RefundOwed {
                notification_id: "n-9-2".into(),
                order_id: "o1".into(),
                amount: 40,
            }],
            seller_of_event: [("e1".to_string(), "s1".to_string())].into(),
            seller_net: [("s1".to_string(), 60)].into(),
        };
        let answers = BuyerAnswers {
            acked: [("h1".to_string(), "o1".to_string())].into(),
            nacked: ["h2".to_string(), "h3".to_string()].into(),
        };
        (provider, refunds, store, answers)
    }

    fn anomalies(
        (p, f, s, a): &(
            Vec<ProviderIntent>,
            Vec<ProviderRefund>,
            StoreBooks,
            BuyerAnswers,
        ),
    ) -> Vec<String> {
        check_money(p, f, s, a).anomalies
    }

    #[test]
    fn a_healthy_run_has_no_anomaly() {
        let h = healthy();
        let r = check_money(&h.0, &h.1, &h.2, &h.3);
        assert!(r.anomalies.is_empty(), "{r:?}");
        assert_eq!(
            (r.holds, r.purchases, r.captures, r.voids, r.refunds),
            (2, 1, 1, 2, 1)
        );
    }

    #[test]
    fn money_without_tickets_is_found() {
        let mut h = healthy();
        h.0[2].captured = 50;
        h.0[2].voided = false;
        let a = anomalies(&h);
        assert!(
            a.iter().any(|x| x.contains("money without tickets")),
            "{a:?}"
        );
    }

    #[test]
    fn an_authorization_not_voided_after_a_refusal_is_found() {
        let mut h = healthy();
        h.0[2].voided = false;
        let a = anomalies(&h);
        assert!(a.iter().any(|x| x.contains("left authorized")), "{a:?}");
    }

    #[test]
    fn tickets_without_money_are_found() {
        let mut h = healthy();
        h.2.orders.push(order("o2", "h4", "pi_404", 70, 0));
        let a = anomalies(&h);
        assert!(
            a.iter().any(|x| x.contains("tickets without money")),
            "{a:?}"
        );
    }

    #[test]
    fn a_refund_skipped_or_paid_twice_is_found() {
        let mut skipped = healthy();
        skipped.1.clear();
        skipped.0[0].refunded = 0;
        let a = anomalies(&skipped);
        assert!(a.iter().any(|x| x.contains("never paid")), "{a:?}");
        let mut twice = healthy();
        twice.1.push(twice.1[0].clone());
        let a = anomalies(&twice);
        assert!(a.iter().any(|x| x.contains("paid 2 times")), "{a:?}");
        let mut unowed = healthy();
        unowed.1.push(ProviderRefund {
            key: "n-10-1".into(),
            intent_id: "pi_1".into(),
            amount: 1,
        });
        let a = anomalies(&unowed);
        assert!(a.iter().any(|x| x.contains("never owed")), "{a:?}");
    }

    #[test]
    fn a_capture_off_the_total_and_a_ledger_off_the_provider_are_found() {
        let mut h = healthy();
        h.0[0].captured = 99;
        let a = anomalies(&h);
        assert!(a.iter().any(|x| x.contains("captured 99")), "{a:?}");
        assert!(a.iter().any(|x| x.contains("seller s1")), "{a:?}");
    }

    #[test]
    fn an_acked_purchase_that_vanished_and_a_nack_that_became_tickets_are_found() {
        let mut h = healthy();
        h.3.acked.insert("h3".into(), "o3".into());
        h.3.nacked.insert("h1".into());
        let a = anomalies(&h);
        assert!(a.iter().any(|x| x.contains("vanished")), "{a:?}");
        assert!(
            a.iter().any(|x| x.contains("refused to the buyer")),
            "{a:?}"
        );
    }
}
