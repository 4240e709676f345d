//! A seller's payout ledger: sales - fees - refunds, per order and in total, with the fee each
//! sale was made at, surviving a reopen (the index behind it is derived).

mod common;

use common::*;
use ticketd_store::command::{Done, SellerLedger};
use ticketd_store::types::SellerPlan;
use ticketd_store::{Command, Query, QueryResult};

fn ledger(h: &H, seller: &str, limit: u32) -> Option<SellerLedger> {
    match h.q(Query::SellerLedger {
        seller_id: seller.into(),
        limit,
    }) {
        QueryResult::SellerLedger(l) => l,
        other => panic!("{other:?}"),
    }
}

#[test]
fn ledger_is_sales_minus_fees_minus_refunds_at_each_sale_s_fee() {
    let mut h = H::show();
    // Two gold seats (100.00 + 10 % fee each) and one silver (50.00 + 10 %).
    let t1 = buy(&mut h, "h1", "u1", &[0, 1]);
    buy(&mut h, "h2", "u2", &[10]);
    // A ticket refunded: its price and its fee go back to the buyer.
    let Done::TicketRefunded { refund_minor, .. } = h.ok(Command::RefundTicket {
        ticket_id: t1[0].clone(),
        user_id: "u1".into(),
    }) else {
        unreachable!()
    };
    assert_eq!(refund_minor, 11_000);
    // The fee drops to 5 % (VIP); the next sale is at the new rate, the earlier keep theirs.
    h.ok(Command::UpdateSeller {
        seller_id: "s1".into(),
        fee_bps: 500,
        plan: SellerPlan::Vip,
    });
    buy(&mut h, "h3", "u3", &[2]);

    let l = ledger(&h, "s1", 2).expect("the seller exists");
    assert_eq!((l.fee_bps, l.plan), (500, SellerPlan::Vip));
    assert_eq!(l.totals.len(), 1);
    let t = &l.totals[0];
    assert_eq!(t.currency, "EUR");
    assert_eq!((t.orders, t.tickets, t.tickets_returned), (3, 4, 1));
    assert_eq!(t.sales_minor, 22_000 + 5_500 + 10_500);
    assert_eq!(t.face_value_minor, 20_000 + 5_000 + 10_000);
    assert_eq!(t.fees_charged_minor, 2_000 + 500 + 500);
    assert_eq!(
        t.fees_minor,
        3_000 - 1_000,
        "the refunded ticket's fee went back"
    );
    assert_eq!(t.refunds_minor, 11_000);
    assert_eq!(
        t.payout_minor,
        t.sales_minor - t.fees_minor - t.refunds_minor
    );
    assert_eq!(
        t.payout_minor,
        10_000 + 5_000 + 10_000,
        "the kept tickets' prices"
    );

    // Newest first, at most the limit; every entry adds up on its own.
    let ids: Vec<&str> = l.entries.iter().map(|e| e.order_id.as_str()).collect();
    assert_eq!(ids, ["o-h3", "o-h2"]);
    for e in &l.entries {
        assert_eq!(
            e.payout_minor,
            e.sales_minor - e.fees_minor - e.refunds_minor
        );
    }
    assert_eq!(l.entries[0].fees_charged_minor, 500, "5 % of 100.00");

    // Another seller has none; an unknown one is none.
    h.ok(Command::CreateSeller {
        seller_id: "s2".into(),
        name: "Other".into(),
        fee_bps: 700,
        plan: SellerPlan::Standard,
    });
    let empty = ledger(&h, "s2", 10).expect("exists");
    assert!(empty.totals.is_empty() && empty.entries.is_empty());
    assert!(ledger(&h, "nobody", 10).is_none());

    // The index is derived: a reopen rebuilds the same ledger.
    let before = ledger(&h, "s1", 10);
    h.reopen();
    assert_eq!(ledger(&h, "s1", 10), before);
}
