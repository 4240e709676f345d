//! A seller's payout ledger, as a query answers it.

use serde::{Deserialize, Serialize};

/// One order as a seller's payout ledger sees it. Buyers pay price + platform fee; a canceled or
/// refunded ticket gives both back, so the platform keeps the fees of the tickets that stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The order.
    pub order_id: String,
    /// Its dt.
    pub dt_id: String,
    /// Log time of the sale.
    pub created_at_ms: i64,
    /// Currency of the amounts.
    pub currency: String,
    /// Tickets sold in it.
    pub tickets: u32,
    /// Tickets canceled or refunded since.
    pub tickets_returned: u32,
    /// What the buyer paid: prices + fees.
    pub sales_minor: i64,
    /// Platform fees charged at the sale (the seller's rate x prices, per ticket).
    pub fees_charged_minor: i64,
    /// Platform fees kept: those of the tickets not returned.
    pub fees_minor: i64,
    /// Owed back to the buyer for returned tickets (their prices + fees).
    pub refunds_minor: i64,
    /// The seller's share: sales - fees - refunds.
    pub payout_minor: i64,
}

/// A seller's totals in one currency (the sums of [`LedgerEntry`] fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    /// Currency.
    pub currency: String,
    /// Orders.
    pub orders: u32,
    /// Tickets sold.
    pub tickets: u32,
    /// Tickets canceled or refunded since.
    pub tickets_returned: u32,
    /// What buyers paid: prices + fees.
    pub sales_minor: i64,
    /// Face value of the tickets sold (sales without fees).
    pub face_value_minor: i64,
    /// Platform fees charged at the sales.
    pub fees_charged_minor: i64,
    /// Platform fees kept.
    pub fees_minor: i64,
    /// Owed back to buyers.
    pub refunds_minor: i64,
    /// The seller's share: sales - fees - refunds.
    pub payout_minor: i64,
}

/// A seller's payout ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerLedger {
    /// The seller.
    pub seller_id: String,
    /// Its fee now, basis points (each order keeps the fee of its sale).
    pub fee_bps: u32,
    /// Its plan now.
    pub plan: crate::types::SellerPlan,
    /// Per currency, over every order.
    pub totals: Vec<LedgerTotals>,
    /// The newest orders first.
    pub entries: Vec<LedgerEntry>,
}
