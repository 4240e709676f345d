//! Holds (the seed's purchase intent) and the purchase itself.
//!
//! The purchase is `ticketd_money::saga` (authorize -> `StartPayment` -> `ConfirmPurchase` ->
//! capture, refusals settled by the money rule); this file checks the request, derives the
//! attempt's ids from its idempotency key, and turns the saga's answer into an ack or a
//! problem.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use ticketd_money::provider::PaymentError;
use ticketd_money::saga::{Purchase, PurchaseError, Refusal};
use ticketd_raft::client::Consistency;
use ticketd_store::command::{Done, GaPick};
use ticketd_store::{Command, Query, QueryResult, Rejection};

use super::calls::{created, dt_place, hold_resource, propose, read, seating, written};
use crate::auth::{Caller, Role};
use crate::extract::IdempotencyKey;
use crate::problem::Problem;
use crate::resources::rfc3339;
use crate::resources::sales::{HeldSeat, Hold, HoldStatus, Order};
use crate::state::AppState;

/// Most seats one hold request may name.
pub const SEATS_PER_REQUEST_MAX: usize = 20;

/// A hold request: chosen seats (and GA places), or the best N of a tier.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Seat indexes from the seat map, for chosen seats.
    #[serde(default)]
    seats: Vec<u32>,
    /// General-admission places.
    #[serde(default)]
    ga: Vec<GaPlaces>,
    /// For best available: the tier.
    tier_id: Option<String>,
    /// For best available: how many.
    quantity: Option<u32>,
}

/// Places of one general-admission area in a hold request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GaPlaces {
    /// The area (`ga_areas[].area_id` of the venue).
    area_id: String,
    /// How many places.
    quantity: u32,
}

/// Holds seats for 10 minutes: chosen seats, or the best available N of a tier.
#[utoipa::path(post, path = "/v1/events/{event_id}/dts/{dt_id}/holds", request_body = HoldRequest,
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 201, description = "held: the hold, its URL in `Location`", body = Hold, headers(("Location" = String, description = "the new resource's URL"))),
              (status = 409, description = "seats taken or held: SEAT_ALREADY_HELD, SEAT_TAKEN, NOT_ENOUGH_SEATS", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "SALE_NOT_OPEN, limits", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "RATE_LIMITED", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "OUTCOME_UNKNOWN: retry with the same key", body = Problem, content_type = "application/problem+json")))]
pub async fn create_hold(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((event_id, dt_id)): Path<(String, String)>,
    Json(req): Json<HoldRequest>,
) -> Result<Response, Problem> {
    caller.require(&[Role::User])?;
    if state.holds_by_user.check_key(&caller.user_id).is_err()
        || state.holds_by_ip.check_key(&peer.ip()).is_err()
    {
        return Err(Problem::new("RATE_LIMITED", "too many holds; slow down").retry_after(10));
    }
    let place = dt_place(&state, &dt_id).await?;
    if place.event_id != event_id {
        return Err(Problem::not_found());
    }
    // The hold id derives from the idempotency key, so a retried request names the same hold.
    let hold_id = format!("h-{}", state.ids.hex(&["hold", &caller.user_id, &key]));
    let hold_ttl_ms = state
        .limits
        .hold_ttl
        .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
    let command = match (req.tier_id, req.quantity) {
        (Some(tier_id), Some(quantity)) if req.seats.is_empty() && req.ga.is_empty() => {
            Command::HoldBestAvailable {
                hold_id,
                dt_id: dt_id.clone(),
                user_id: caller.user_id.clone(),
                tier_id,
                quantity,
                hold_ttl_ms,
            }
        }
        (None, None) if !req.seats.is_empty() || !req.ga.is_empty() => {
            if req.seats.len() + req.ga.len() > SEATS_PER_REQUEST_MAX {
                return Err(Problem::bad_request(format!(
                    "at most {SEATS_PER_REQUEST_MAX} seats per hold"
                )));
            }
            let ga = req
                .ga
                .into_iter()
                .map(|g| GaPick {
                    area_id: g.area_id,
                    quantity: g.quantity,
                })
                .collect();
            Command::HoldSeats {
                hold_id,
                dt_id: dt_id.clone(),
                user_id: caller.user_id.clone(),
                seats: req.seats,
                ga,
                hold_ttl_ms,
            }
        }
        _ => {
            return Err(Problem::bad_request(
                "give seats/ga, or tier_id with quantity",
            ))
        }
    };
    let (done, index) = propose(&state, &caller.user_id, &key, command).await?;
    let Done::HoldPlaced {
        hold_id,
        seats,
        total_minor,
        currency,
        expires_at_ms,
    } = done
    else {
        return Err(Problem::internal("unexpected outcome of a hold"));
    };
    let map = seating(&state, &place.venue_id).await?;
    let location = format!("/v1/events/{event_id}/dts/{dt_id}/holds/{hold_id}");
    let hold = Hold {
        seats: seats.into_iter().map(|s| HeldSeat::of(s, &map)).collect(),
        hold_id,
        dt_id,
        status: HoldStatus::Live,
        total_minor,
        currency,
        expires_at: rfc3339(expires_at_ms),
        order_id: None,
    };
    created(&hold, &location, index)
}

async fn owned_hold(
    state: &AppState,
    caller: &Caller,
    dt_id: &str,
    hold_id: &str,
) -> Result<ticketd_store::types::Hold, Problem> {
    let (r, _) = read(
        state,
        Query::GetHold {
            hold_id: hold_id.to_string(),
        },
        Consistency::Linearizable,
    )
    .await?;
    match r {
        QueryResult::Hold(Some(h)) if h.user_id == caller.user_id && h.dt_id == dt_id => Ok(h),
        _ => Err(Problem::not_found()),
    }
}

/// A hold of the caller's (linearizable).
#[utoipa::path(get, path = "/v1/events/{event_id}/dts/{dt_id}/holds/{hold_id}",
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("hold_id" = String, Path, description = "hold id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the hold", body = Hold),
              (status = 404, description = "no such hold of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path((_event_id, dt_id, hold_id)): Path<(String, String, String)>,
) -> Result<Json<Hold>, Problem> {
    let hold = owned_hold(&state, &caller, &dt_id, &hold_id).await?;
    Ok(Json(hold_resource(&state, &hold).await?))
}

/// Gives a hold's seats back.
#[utoipa::path(delete, path = "/v1/events/{event_id}/dts/{dt_id}/holds/{hold_id}",
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("hold_id" = String, Path, description = "hold id"), ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "released: the hold, its status `released`", body = Hold),
              (status = 404, description = "no such hold of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((_event_id, dt_id, hold_id)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let hold = owned_hold(&state, &caller, &dt_id, &hold_id).await?;
    let cmd = Command::ReleaseHold {
        hold_id,
        user_id: caller.user_id.clone(),
    };
    let (_, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let mut released = hold_resource(&state, &hold).await?;
    released.status = HoldStatus::Released;
    Ok(written(StatusCode::OK, &released, index))
}

/// A purchase: the held seats, the total the user saw, the provider's payment-method token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// The hold to buy.
    hold_id: String,
    /// The total shown to the user, minor units; a different current total is a nack.
    expected_total_minor: i64,
    /// The provider's payment-method token (never card data); without it, the saved one.
    #[serde(default)]
    payment_method_token: Option<String>,
}

/// The token stays out of logs.
impl std::fmt::Debug for PurchaseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurchaseRequest")
            .field("hold_id", &self.hold_id)
            .field("expected_total_minor", &self.expected_total_minor)
            .finish_non_exhaustive()
    }
}

/// Buys a hold: ack with the order confirmation id, or nack with a code.
#[utoipa::path(post, path = "/v1/events/{event_id}/dts/{dt_id}", request_body = PurchaseRequest,
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 201, description = "ack: the order, its URL in `Location`", body = Order, headers(("Location" = String, description = "the new resource's URL"))),
              (status = 402, description = "PAYMENT_DECLINED, PAYMENT_FAILED (the payment was voided; also when the provider's answer does not match the hold)", body = Problem, content_type = "application/problem+json"),
              (status = 410, description = "HOLD_EXPIRED", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "AMOUNT_MISMATCH and other nacks", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "OUTCOME_UNKNOWN: retry with the same key", body = Problem, content_type = "application/problem+json"),
              (status = 504, description = "PAYMENT_TIMEOUT: the provider did not answer; no ticket, any authorization is voided", body = Problem, content_type = "application/problem+json")))]
pub async fn purchase(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((_event_id, dt_id)): Path<(String, String)>,
    Json(req): Json<PurchaseRequest>,
) -> Result<Response, Problem> {
    caller.require(&[Role::User])?;
    let provider = state
        .payments
        .clone()
        .ok_or_else(|| Problem::new("UNAVAILABLE", "no payment provider configured"))?;
    let hold = owned_hold(&state, &caller, &dt_id, &req.hold_id).await?;
    if hold.total_minor != req.expected_total_minor {
        return Err(Problem::new(
            "AMOUNT_MISMATCH",
            format!(
                "the hold's total is {} {}, not {}",
                hold.total_minor, hold.currency, req.expected_total_minor
            ),
        ));
    }
    let payment_method = match req.payment_method_token.clone() {
        Some(t) => t,
        None => super::users::saved_payment_method(&state, &caller.user_id).await?,
    };
    let purchase = Purchase {
        cluster: &state.cluster,
        provider: &provider,
        user_id: &caller.user_id,
        key: &key,
        hold: &hold,
        payment_method: &payment_method,
        // Derived from the idempotency key: a retry proposes the very same command.
        order_id: format!("o-{}", state.ids.hex(&["order", &caller.user_id, &key])),
        secret_seed: state
            .code_secrets
            .bytes(&["ticket-secrets", &caller.user_id, &key])
            .to_vec(),
        #[cfg(feature = "failpoints")]
        fault: state.saga_fault,
    };
    match purchase.run().await {
        Ok(confirmed) => {
            let Done::PurchaseConfirmed { order_id, .. } = confirmed.done else {
                return Err(Problem::internal("unexpected outcome of a purchase"));
            };
            let order = super::orders::order_resource(&state, &caller, &order_id).await?;
            created(
                &order,
                &format!("/v1/orders/{order_id}"),
                confirmed.log_index,
            )
        }
        Err(e) => Err(purchase_problem(e)),
    }
}

/// The nack of a purchase that made no order.
fn purchase_problem(e: PurchaseError) -> Problem {
    match e {
        PurchaseError::Payment(e) => payment_problem(e),
        PurchaseError::Refused(Refusal::Store {
            code: Rejection::NotOwner,
            ..
        }) => Problem::not_found(),
        PurchaseError::Refused(Refusal::Store { code, detail }) => {
            Problem::new(code.code(), detail)
        }
        PurchaseError::Refused(Refusal::Voided) => {
            Problem::new("PAYMENT_FAILED", "the payment was voided; place a new hold")
        }
        PurchaseError::Refused(Refusal::Mismatch(detail)) => Problem::new(
            "PAYMENT_FAILED",
            format!("the payment provider's answer did not match the hold ({detail}); the payment was voided and no ticket issued"),
        ),
        PurchaseError::Refused(Refusal::Cluster(e)) | PurchaseError::Cluster(e) => e.into(),
        PurchaseError::InFlight => Problem::new(
            "OUTCOME_UNKNOWN",
            "the payment is still in flight; retry with the same Idempotency-Key",
        )
        .retry_after(1),
        PurchaseError::Broken(detail) => Problem::internal(detail),
    }
}

fn payment_problem(e: PaymentError) -> Problem {
    match e {
        PaymentError::Declined(detail) => {
            Problem::new("PAYMENT_DECLINED", format!("the card was declined: {detail}"))
        }
        // A nack: no ticket comes of this attempt. The store never heard of the payment, so the
        // reconciler voids whatever the provider may have authorized.
        PaymentError::Unknown(detail) => Problem::new(
            "PAYMENT_TIMEOUT",
            format!("the payment provider did not answer ({detail}); no ticket was issued and any authorization will be voided"),
        ),
        PaymentError::Rejected(detail) => Problem::new("PAYMENT_REJECTED", detail),
    }
}
