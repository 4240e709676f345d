//! The money rule of the domain, in integer minor units: the platform fee on a price, what a
//! hold costs, what a returned ticket gives back, and a seller's payout.
//!
//! A buyer pays each ticket's price plus the seller's platform fee on it (basis points,
//! rounded half up). A canceled or refunded ticket gives both back, so the platform keeps the
//! fees of the tickets that stay, and the seller is paid the rest: sales - fees kept - refunds.
//!
//! Amounts stay far inside i64: prices are at most [`PRICE_MINOR_MAX`](crate::limits::PRICE_MINOR_MAX), fees at most
//! [`FEE_BPS_MAX`](crate::limits::FEE_BPS_MAX), a hold at most
//! [`SEATS_PER_HOLD_MAX`](crate::limits::SEATS_PER_HOLD_MAX) items (all validated before any
//! amount is computed). The sums saturate rather than overflow so that a broken state cannot
//! panic a read; the invariant checker reports such a state.

use crate::protocol::{LedgerEntry, LedgerTotals};
use crate::types::{HoldItem, Order, Ticket};

/// Basis points in a whole.
const BPS_PER_WHOLE: i128 = 10_000;

/// The platform fee on a price, rounded half up.
pub(crate) fn platform_fee_minor(price_minor: i64, fee_bps: u32) -> i64 {
    let fee = i128::from(price_minor)
        .saturating_mul(i128::from(fee_bps))
        .saturating_add(BPS_PER_WHOLE / 2)
        .checked_div(BPS_PER_WHOLE)
        .unwrap_or(0);
    i64::try_from(fee).unwrap_or(i64::MAX)
}

/// What a hold costs: the prices of its items, their fees, and both together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HoldAmounts {
    pub subtotal_minor: i64,
    pub fee_minor: i64,
    pub total_minor: i64,
}

impl HoldAmounts {
    /// The amounts of a hold of `items`, each already priced with its fee.
    pub(crate) fn of(items: &[HoldItem]) -> Self {
        let subtotal_minor = items
            .iter()
            .fold(0i64, |sum, item| sum.saturating_add(item.price_minor));
        let fee_minor = items
            .iter()
            .fold(0i64, |sum, item| sum.saturating_add(item.fee_minor));
        HoldAmounts {
            subtotal_minor,
            fee_minor,
            total_minor: subtotal_minor.saturating_add(fee_minor),
        }
    }
}

/// What a canceled or refunded ticket gives back: its price and its fee.
pub(crate) fn ticket_return_minor(ticket: &Ticket) -> i64 {
    ticket.price_minor.saturating_add(ticket.fee_minor)
}

/// An order as its seller's ledger sees it; `returned` are its canceled and refunded tickets.
pub(crate) fn ledger_entry(order: &Order, returned: &[&Ticket]) -> LedgerEntry {
    let fees_returned = returned
        .iter()
        .fold(0i64, |sum, ticket| sum.saturating_add(ticket.fee_minor));
    let fees_kept = order.fee_minor.saturating_sub(fees_returned);
    LedgerEntry {
        order_id: order.order_id.clone(),
        dt_id: order.dt_id.clone(),
        created_at_ms: order.created_at_ms,
        currency: order.currency.clone(),
        tickets: count(order.ticket_ids.len()),
        tickets_returned: count(returned.len()),
        sales_minor: order.total_minor,
        fees_charged_minor: order.fee_minor,
        fees_minor: fees_kept,
        refunds_minor: order.refunded_minor,
        payout_minor: order
            .total_minor
            .saturating_sub(fees_kept)
            .saturating_sub(order.refunded_minor),
    }
}

/// Adds one entry of the totals' currency to a seller's totals.
pub(crate) fn add_to_totals(totals: &mut LedgerTotals, entry: &LedgerEntry) {
    totals.orders = totals.orders.saturating_add(1);
    totals.tickets = totals.tickets.saturating_add(entry.tickets);
    totals.tickets_returned = totals
        .tickets_returned
        .saturating_add(entry.tickets_returned);
    totals.sales_minor = totals.sales_minor.saturating_add(entry.sales_minor);
    let face_value = entry.sales_minor.saturating_sub(entry.fees_charged_minor);
    totals.face_value_minor = totals.face_value_minor.saturating_add(face_value);
    totals.fees_charged_minor = totals
        .fees_charged_minor
        .saturating_add(entry.fees_charged_minor);
    totals.fees_minor = totals.fees_minor.saturating_add(entry.fees_minor);
    totals.refunds_minor = totals.refunds_minor.saturating_add(entry.refunds_minor);
    totals.payout_minor = totals.payout_minor.saturating_add(entry.payout_minor);
}

/// A count of tickets as a ledger's u32 (an order has at most `SEATS_PER_HOLD_MAX`).
fn count(tickets: usize) -> u32 {
    u32::try_from(tickets).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{FEE_BPS_MAX, PRICE_MINOR_MAX};

    #[test]
    fn the_fee_rounds_half_up_and_stays_inside_i64_at_the_bounds() {
        assert_eq!(platform_fee_minor(10_000, 250), 250);
        assert_eq!(platform_fee_minor(1, 5_000), 1, "0.5 rounds up");
        assert_eq!(platform_fee_minor(1, 4_999), 0);
        assert_eq!(platform_fee_minor(0, FEE_BPS_MAX), 0);
        let largest = platform_fee_minor(PRICE_MINOR_MAX, FEE_BPS_MAX);
        assert!(largest > 0 && largest < i64::MAX / 1_000);
    }
}
