//! A seller's payout ledger: what buyers paid, the platform's fees (each order at the fee of its
//! sale), refunds, and the seller's share, per currency and per order. Readable by that seller
//! (its token names the seller) and by an admin; anyone else gets 404.

use axum::extract::{Path, Query as QueryParams, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use ticketd_raft::client::Consistency;
use ticketd_store::command::{LedgerEntry, LedgerTotals};
use ticketd_store::{Query, QueryResult};

use super::calls::read;
use crate::auth::{Caller, Role};
use crate::problem::Problem;
use crate::state::AppState;

/// Newest orders listed by default.
pub const LEDGER_ENTRIES_DEFAULT: u32 = 50;
/// Most orders listed.
pub const LEDGER_ENTRIES_MAX: u32 = 500;

/// Query parameters of the ledger.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    /// Newest orders to list (1 to 500, default 50); the totals cover every order.
    limit: Option<u32>,
}

/// A seller's totals in one currency. Amounts are minor units.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerTotalsDto {
    /// ISO 4217 currency.
    currency: String,
    /// Orders.
    orders: u32,
    /// Tickets sold.
    tickets: u32,
    /// Tickets canceled or refunded since.
    tickets_returned: u32,
    /// What buyers paid: ticket prices + platform fees.
    sales_minor: i64,
    /// Ticket prices sold (sales without fees).
    face_value_minor: i64,
    /// Platform fees charged at the sales (each at the seller's fee then).
    fees_charged_minor: i64,
    /// Platform fees kept: those of the tickets not returned.
    fees_minor: i64,
    /// Owed back to buyers for returned tickets (price + fee).
    refunds_minor: i64,
    /// The seller's payout: sales - fees - refunds.
    payout_minor: i64,
}

impl From<LedgerTotals> for LedgerTotalsDto {
    fn from(t: LedgerTotals) -> Self {
        Self {
            currency: t.currency,
            orders: t.orders,
            tickets: t.tickets,
            tickets_returned: t.tickets_returned,
            sales_minor: t.sales_minor,
            face_value_minor: t.face_value_minor,
            fees_charged_minor: t.fees_charged_minor,
            fees_minor: t.fees_minor,
            refunds_minor: t.refunds_minor,
            payout_minor: t.payout_minor,
        }
    }
}

/// One order in the ledger. Amounts are minor units.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerEntryDto {
    /// The order.
    order_id: String,
    /// Its dt.
    dt_id: String,
    /// When it was sold (log time, Unix ms).
    #[schema(format = DateTime)]
    created_at: String,
    /// ISO 4217 currency.
    currency: String,
    /// Tickets sold in it.
    tickets: u32,
    /// Tickets canceled or refunded since.
    tickets_returned: u32,
    /// What the buyer paid.
    sales_minor: i64,
    /// Platform fee charged at the sale.
    fees_charged_minor: i64,
    /// Platform fee kept.
    fees_minor: i64,
    /// Owed back to the buyer.
    refunds_minor: i64,
    /// The seller's payout: sales - fees - refunds.
    payout_minor: i64,
}

impl From<LedgerEntry> for LedgerEntryDto {
    fn from(e: LedgerEntry) -> Self {
        Self {
            order_id: e.order_id,
            dt_id: e.dt_id,
            created_at: crate::resources::rfc3339(e.created_at_ms),
            currency: e.currency,
            tickets: e.tickets,
            tickets_returned: e.tickets_returned,
            sales_minor: e.sales_minor,
            fees_charged_minor: e.fees_charged_minor,
            fees_minor: e.fees_minor,
            refunds_minor: e.refunds_minor,
            payout_minor: e.payout_minor,
        }
    }
}

/// A seller's payout ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"seller_id": "u-77ab10", "fee_bps": 1000, "plan": "standard",
    "totals": [{"currency": "DKK", "orders": 1, "tickets": 1, "tickets_returned": 0,
    "sales_minor": 49500, "face_value_minor": 45000, "fees_charged_minor": 4500,
    "fees_minor": 4500, "refunds_minor": 0, "payout_minor": 40500}],
    "entries": [{"order_id": "o-4b9d2a", "dt_id": "d-51c2e0", "created_at": "2027-06-01T19:30:00Z",
    "currency": "DKK", "tickets": 1, "tickets_returned": 0, "sales_minor": 49500,
    "fees_charged_minor": 4500, "fees_minor": 4500, "refunds_minor": 0, "payout_minor": 40500}]}))]
pub struct Ledger {
    /// The seller.
    seller_id: String,
    /// The seller's platform fee now, basis points (each order keeps the fee of its sale).
    fee_bps: u32,
    /// The seller's plan now: `standard` or `vip`.
    plan: crate::resources::people::PlanName,
    /// Per currency, over every order.
    totals: Vec<LedgerTotalsDto>,
    /// The newest orders first.
    entries: Vec<LedgerEntryDto>,
}

/// A seller's payout ledger: sales - fees - refunds (the seller or an admin).
#[utoipa::path(get, path = "/v1/sellers/{seller_id}/ledger",
    params(("seller_id" = String, Path, description = "seller id"), LedgerParams),
    security(("bearer" = [])),
    responses((status = 200, description = "the ledger", body = Ledger),
              (status = 404, description = "no such seller, or another seller's", body = Problem, content_type = "application/problem+json")))]
pub async fn seller_ledger(
    State(state): State<AppState>,
    caller: Caller,
    Path(seller_id): Path<String>,
    QueryParams(p): QueryParams<LedgerParams>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Seller, Role::Admin])?;
    if caller.role != Role::Admin && caller.user_id != seller_id {
        return Err(Problem::not_found());
    }
    let limit = p.limit.unwrap_or(LEDGER_ENTRIES_DEFAULT);
    if !(1..=LEDGER_ENTRIES_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be 1 to {LEDGER_ENTRIES_MAX}"
        )));
    }
    let q = Query::SellerLedger { seller_id, limit };
    let QueryResult::SellerLedger(Some(l)) = read(&state, q, Consistency::Linearizable).await?.0
    else {
        return Err(Problem::not_found());
    };
    Ok(Json(Ledger {
        seller_id: l.seller_id,
        fee_bps: l.fee_bps,
        plan: l.plan.into(),
        totals: l.totals.into_iter().map(Into::into).collect(),
        entries: l.entries.into_iter().map(Into::into).collect(),
    })
    .into_response())
}
