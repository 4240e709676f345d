//! Orders and tickets of the caller: read linearizably; another user's answers 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use ticketd_raft::client::Consistency;
use ticketd_store::command::{Done, OrderView};
use ticketd_store::{Command, Query, QueryResult};

use super::calls::{propose, read, written};
use crate::auth::Caller;
use crate::extract::IdempotencyKey;
use crate::problem::Problem;
use crate::resources::sales::{Order, OrderList, Refund, Ticket, TicketList, TicketWithCode};
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

/// The order `order_id` of the caller, as the API answers it (linearizable).
pub async fn order_resource(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
) -> Result<Order, Problem> {
    Ok(Order::from(&owned_order(state, caller, order_id).await?))
}

/// An order of the caller's, with its tickets (linearizable).
#[utoipa::path(get, path = "/v1/orders/{order_id}", params(("order_id" = String, Path, description = "order id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the order", body = Order),
              (status = 404, description = "no such order of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(order_resource(&state, &caller, &order_id).await?))
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
    responses((status = 200, description = "canceled: the order now", body = Order),
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
        order_id: order_id.clone(),
        user_id: caller.user_id.clone(),
        reason: req.reason,
    };
    let (_, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    // The money goes back through the outbox: the cancel wrote a Refund notification with the
    // amount owed, which the leader's dispatcher refunds at the provider exactly once.
    let order = order_resource(&state, &caller, &order_id).await?;
    Ok(written(StatusCode::OK, &order, index))
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
    responses((status = 200, description = "orders with their tickets", body = OrderList)))]
pub async fn my_orders(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OrderList>, Problem> {
    let orders = caller_orders(&state, &caller).await?;
    Ok(Json(OrderList {
        orders: orders.iter().map(Order::from).collect(),
    }))
}

/// The caller's tickets (of the newest orders), newest first; codes come with each ticket's
/// own read.
#[utoipa::path(get, path = "/v1/me/tickets", security(("bearer" = [])),
    responses((status = 200, description = "tickets, without codes", body = TicketList)))]
pub async fn my_tickets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TicketList>, Problem> {
    let orders = caller_orders(&state, &caller).await?;
    Ok(Json(TicketList {
        tickets: orders
            .iter()
            .flat_map(|o| o.tickets.iter())
            .map(Ticket::from)
            .collect(),
    }))
}

/// One of the caller's tickets, with its current rotating code and QR (SVG).
#[utoipa::path(get, path = "/v1/tickets/{ticket_id}", params(("ticket_id" = String, Path, description = "ticket id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the ticket, its scan history and current code", body = TicketWithCode),
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
    let body = TicketWithCode {
        ticket: Ticket::from(&t),
        code,
        code_refresh_in_s: refresh_in_s,
        qr_payload: payload,
        qr_svg: svg,
    };
    let mut resp = Json(body).into_response();
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
    responses((status = 200, description = "refunded, with the amount owed back", body = Refund),
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
    let ticket = match r {
        QueryResult::Ticket(Some(t)) if t.user_id == caller.user_id => t,
        _ => return Err(Problem::not_found()),
    };
    let cmd = Command::RefundTicket {
        ticket_id,
        user_id: caller.user_id.clone(),
    };
    let (done, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let Done::TicketRefunded {
        ticket_id,
        refund_minor,
    } = done
    else {
        return Err(Problem::internal("unexpected outcome of a refund"));
    };
    let refund = Refund {
        ticket_id,
        order_id: ticket.order_id,
        amount_minor: refund_minor,
        currency: ticket.currency,
    };
    Ok(written(StatusCode::OK, &refund, index))
}
