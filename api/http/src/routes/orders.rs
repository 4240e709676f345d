//! Orders and tickets of the caller: read linearizably; another user's answers 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use ticketd_raft::client::Consistency;
use ticketd_store::command::OrderView;
use ticketd_store::{Command, Query, QueryResult};

use super::calls::{propose, read, written};
use crate::auth::Caller;
use crate::extract::IdempotencyKey;
use crate::problem::Problem;
use crate::state::AppState;
use ticketd_notify::tickets;

/// Most orders listed at once.
pub const ORDERS_PAGE_MAX: u32 = 100;

async fn owned_order(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
) -> Result<OrderView, Problem> {
    let (r, _) = read(
        state,
        Query::GetOrder {
            order_id: order_id.to_string(),
        },
        Consistency::Linearizable,
    )
    .await?;
    match r {
        QueryResult::Order(Some(o)) if o.order.user_id == caller.user_id => Ok(o),
        _ => Err(Problem::not_found()),
    }
}

/// One of the caller's orders, with its tickets.
#[utoipa::path(get, path = "/v1/orders/{order_id}", params(("order_id" = String, Path, description = "order id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the order", content_type = "application/json"),
              (status = 404, description = "no such order of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> Result<Response, Problem> {
    let o = owned_order(&state, &caller, &order_id).await?;
    Ok(Json(order_json(&o)?).into_response())
}

/// A ticket as JSON without its secret: the secret of the rotating code never leaves the server.
fn ticket_json(t: &ticketd_store::types::Ticket) -> Result<serde_json::Value, Problem> {
    let mut v = serde_json::to_value(t).map_err(Problem::internal)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("secret");
    }
    Ok(v)
}

/// An order with its tickets as JSON, without ticket secrets.
fn order_json(o: &OrderView) -> Result<serde_json::Value, Problem> {
    let tickets = o
        .tickets
        .iter()
        .map(ticket_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::json!({ "order": o.order, "tickets": tickets }))
}

/// Why an order is canceled.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Free text.
    #[serde(default)]
    reason: String,
}

/// Cancels an order: its tickets are canceled, the seats go back, a refund is owed (paid by the
/// dispatcher from the outbox).
#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", request_body = CancelRequest,
    params(("order_id" = String, Path, description = "order id"), ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "canceled", content_type = "application/json"),
              (status = 404, description = "no such order of yours", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "ORDER_NOT_CANCELABLE", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path(order_id): Path<String>,
    Json(req): Json<CancelRequest>,
) -> Result<Response, Problem> {
    owned_order(&state, &caller, &order_id).await?;
    let cmd = Command::CancelOrder {
        order_id,
        user_id: caller.user_id.clone(),
        reason: req.reason,
    };
    let (done, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    // The money goes back through the outbox: the cancel wrote a Refund notification with the
    // amount owed, which the leader's dispatcher refunds at the provider exactly once.
    Ok(written(StatusCode::OK, done, index))
}

/// The caller's newest orders with their tickets (linearizable).
async fn caller_orders(state: &AppState, caller: &Caller) -> Result<Vec<OrderView>, Problem> {
    let q = Query::UserOrders {
        user_id: caller.user_id.clone(),
        limit: ORDERS_PAGE_MAX,
    };
    match read(state, q, Consistency::Linearizable).await?.0 {
        QueryResult::Orders(orders) => Ok(orders),
        _ => Err(Problem::internal("unexpected query result")),
    }
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/v1/me/orders", security(("bearer" = [])),
    responses((status = 200, description = "orders with their tickets", content_type = "application/json")))]
pub async fn my_orders(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let orders = caller_orders(&state, &caller)
        .await?
        .iter()
        .map(order_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(serde_json::json!({ "orders": orders })).into_response())
}

/// The caller's tickets (of the newest orders), newest first; codes come with each ticket's
/// own read.
#[utoipa::path(get, path = "/v1/me/tickets", security(("bearer" = [])),
    responses((status = 200, description = "tickets, without codes", content_type = "application/json")))]
pub async fn my_tickets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, Problem> {
    let orders = caller_orders(&state, &caller).await?;
    let tickets = orders
        .iter()
        .flat_map(|o| o.tickets.iter())
        .map(ticket_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(serde_json::json!({ "tickets": tickets })).into_response())
}

/// One of the caller's tickets, with its current rotating code and QR (SVG).
#[utoipa::path(get, path = "/v1/tickets/{ticket_id}", params(("ticket_id" = String, Path, description = "ticket id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the ticket, its scan history and current code", content_type = "application/json"),
              (status = 404, description = "no such ticket of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
) -> Result<Response, Problem> {
    let (r, _) = read(
        &state,
        Query::GetTicket { ticket_id },
        Consistency::Linearizable,
    )
    .await?;
    let t = match r {
        QueryResult::Ticket(Some(t)) if t.user_id == caller.user_id => t,
        _ => return Err(Problem::not_found()),
    };
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0);
    let (code, refresh_in_s) = tickets::current_code(&t.secret, now_s);
    let payload = tickets::qr_payload(&t.ticket_id, &code);
    let svg = tickets::qr_svg(&payload).map_err(Problem::internal)?;
    let mut v = serde_json::to_value(&t).map_err(Problem::internal)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("secret");
        o.insert("code".into(), code.into());
        o.insert("code_refresh_in_s".into(), refresh_in_s.into());
        o.insert("qr_payload".into(), payload.into());
        o.insert("qr_svg".into(), svg.into());
    }
    let mut resp = Json(v).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    Ok(resp)
}

/// Refunds one valid ticket of the caller's: the seat goes back on sale, its price is owed back.
#[utoipa::path(post, path = "/v1/tickets/{ticket_id}/refund", params(("ticket_id" = String, Path, description = "ticket id"),
    ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "refunded, with the amount owed back", content_type = "application/json"),
              (status = 404, description = "no such ticket of yours", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "TICKET_NOT_REFUNDABLE", body = Problem, content_type = "application/problem+json")))]
pub async fn refund_ticket(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path(ticket_id): Path<String>,
) -> Result<Response, Problem> {
    let (r, _) = read(
        &state,
        Query::GetTicket {
            ticket_id: ticket_id.clone(),
        },
        Consistency::Linearizable,
    )
    .await?;
    if !matches!(r, QueryResult::Ticket(Some(ref t)) if t.user_id == caller.user_id) {
        return Err(Problem::not_found());
    }
    let cmd = Command::RefundTicket {
        ticket_id,
        user_id: caller.user_id.clone(),
    };
    let (done, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    Ok(written(StatusCode::OK, done, index))
}
