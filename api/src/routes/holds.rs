//! Holds (the seed's purchase intent) and the purchase itself.
//!
//! Purchase saga: authorize at the provider with the hold id as idempotency key -> pin the hold
//! with the payment (StartPayment) -> one Raft command turns hold into order + tickets
//! (ConfirmPurchase, refused if the hold is gone or the amount differs) -> capture. When the
//! store refuses, the payment is failed in the store and then voided; a payment the store
//! confirmed (through a concurrent attempt or the reconciler) is captured and acked instead.
//! A crash between the steps leaves an authorized intent whose metadata names the hold: the
//! leader's reconciler closes that gap (see `cluster/src/worker.rs`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use ticketd_raft::client::Consistency;
use ticketd_store::command::{Done, GaPick};
use ticketd_store::types::PaymentStatus;
use ticketd_store::{Command, Query, QueryResult};

use super::{propose, read, read_dt, written};
use crate::auth::{Caller, Role};
use crate::extract::IdempotencyKey;
use crate::payments::{CreateIntent, HttpProvider, IntentStatus, PaymentError, PaymentProvider};
use crate::problem::Problem;
use crate::state::{AppState, SagaFault, SagaStep};

/// Most seats one hold request may name.
pub const SEATS_PER_REQUEST_MAX: usize = 20;

/// A hold request: chosen seats (and GA places), or the best N of a tier.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Seat indexes from the seat map, for chosen seats.
    #[serde(default)]
    seats: Vec<u32>,
    /// General-admission places: `[{"area_id": "...", "quantity": n}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    ga: Vec<GaPickDto>,
    /// For best available: the tier.
    tier_id: Option<String>,
    /// For best available: how many.
    quantity: Option<u32>,
}

/// GA places in a hold request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GaPickDto {
    area_id: String,
    quantity: u32,
}

/// Holds seats for 10 minutes: chosen seats, or the best available N of a tier.
#[utoipa::path(post, path = "/v1/events/{event_id}/dts/{dt_id}/holds", request_body = HoldRequest,
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 201, description = "held", content_type = "application/json"),
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
    // The dt's event, cached. On a miss one read fills it while the other requests for the
    // same dt wait for that read: a dt's sale opening with a burst of holds costs one read,
    // not one per request of the burst.
    let dt_event = state
        .dt_events
        .try_get_with_by_ref(&dt_id, async {
            read_dt(&state, &dt_id)
                .await?
                .map(|d| d.event_id)
                .ok_or_else(Problem::not_found)
        })
        .await
        .map_err(|e| (*e).clone())?;
    if dt_event != event_id {
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
                dt_id,
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
                dt_id,
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
    Ok(written(StatusCode::CREATED, &done, index))
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
    responses((status = 200, description = "the hold", content_type = "application/json"),
              (status = 404, description = "no such hold of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path((_event_id, dt_id, hold_id)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    Ok(Json(owned_hold(&state, &caller, &dt_id, &hold_id).await?).into_response())
}

/// Gives a hold's seats back.
#[utoipa::path(delete, path = "/v1/events/{event_id}/dts/{dt_id}/holds/{hold_id}",
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("hold_id" = String, Path, description = "hold id"), ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "released", content_type = "application/json"),
              (status = 404, description = "no such hold of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((_event_id, dt_id, hold_id)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    owned_hold(&state, &caller, &dt_id, &hold_id).await?;
    let cmd = Command::ReleaseHold {
        hold_id,
        user_id: caller.user_id.clone(),
    };
    let (done, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    Ok(written(StatusCode::OK, &done, index))
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
    responses((status = 201, description = "ack: order confirmed", content_type = "application/json"),
              (status = 402, description = "PAYMENT_DECLINED, PAYMENT_FAILED (the payment was voided)", body = Problem, content_type = "application/problem+json"),
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
    // 1. Authorize; the hold id is the provider's idempotency key, so a retry finds the same intent.
    let intent = provider
        .authorize(
            &hold.hold_id,
            &CreateIntent {
                amount: hold.total_minor,
                currency: hold.currency.clone(),
                payment_method: payment_method.clone(),
                metadata: [
                    ("hold_id".to_string(), hold.hold_id.clone()),
                    ("user_id".to_string(), caller.user_id.clone()),
                    ("dt_id".to_string(), dt_id.clone()),
                ]
                .into(),
            },
        )
        .await
        .map_err(payment_problem)?;
    SagaFault::after(state.saga_fault, SagaStep::Authorize).await;
    let saga = Saga {
        state: &state,
        provider: &provider,
        caller: &caller,
        key: &key,
        hold_id: &hold.hold_id,
        intent_id: &intent.id,
    };
    if intent.status == IntentStatus::Canceled {
        // Voided earlier (a refused or abandoned attempt): only an order the store already
        // made with it counts.
        return saga
            .settle(Problem::new(
                "PAYMENT_FAILED",
                "the payment was voided; place a new hold",
            ))
            .await;
    }
    // 2. Pin the hold with the payment. The store decides: a refusal leaves the payment as the
    // store knows it (someone else may have started or finished it).
    let start = Command::StartPayment {
        hold_id: hold.hold_id.clone(),
        user_id: caller.user_id.clone(),
        payment_ref: intent.id.clone(),
        amount_minor: hold.total_minor,
        currency: hold.currency.clone(),
    };
    match propose(&state, &caller.user_id, &format!("{key}:start"), start).await {
        Ok(_) => {}
        Err(p) if unknown(&p) => return Err(p),
        Err(p) => match saga.payment().await? {
            Some(PaymentStatus::Pending) => {}
            _ => return saga.settle(p).await,
        },
    }
    SagaFault::after(state.saga_fault, SagaStep::Start).await;
    // 3. Hold -> order + tickets, in one command.
    // Derived from the idempotency key: a retry proposes the very same command.
    let order_id = format!("o-{}", state.ids.hex(&["order", &caller.user_id, &key]));
    let seed = state
        .code_secrets
        .bytes(&["ticket-secrets", &caller.user_id, &key]);
    let confirm = Command::ConfirmPurchase {
        hold_id: hold.hold_id.clone(),
        order_id,
        payment_ref: intent.id.clone(),
        amount_minor: hold.total_minor,
        currency: hold.currency.clone(),
        secret_seed: seed.to_vec(),
    };
    let (done, index) =
        match propose(&state, &caller.user_id, &format!("{key}:confirm"), confirm).await {
            Ok(x) => x,
            // Unknown: the order may exist; this key's retry or the reconciler settles it.
            Err(p) if unknown(&p) => return Err(p),
            Err(p) => return saga.settle(p).await,
        };
    SagaFault::after(state.saga_fault, SagaStep::Confirm).await;
    // 4. Capture: idempotent; a failure here is closed by the reconciler (order without capture).
    saga.capture().await;
    Ok(written(StatusCode::CREATED, &done, index))
}

fn unknown(p: &Problem) -> bool {
    p.code == "OUTCOME_UNKNOWN" || p.code == "UNAVAILABLE"
}

fn payment_problem(e: PaymentError) -> Problem {
    match e {
        PaymentError::Declined(d) => {
            Problem::new("PAYMENT_DECLINED", format!("the card was declined: {d}"))
        }
        // A nack: no ticket comes of this attempt. The store never heard of the payment, so the
        // reconciler voids whatever the provider may have authorized.
        PaymentError::Unknown(d) => Problem::new(
            "PAYMENT_TIMEOUT",
            format!("the payment provider did not answer ({d}); no ticket was issued and any authorization will be voided"),
        ),
        PaymentError::Rejected(d) => Problem::new("PAYMENT_REJECTED", d),
    }
}

/// One purchase attempt past authorization. The rule that keeps money and tickets together:
/// capture only a payment the store confirmed; void only a payment the store failed (or one it
/// can never start).
struct Saga<'a> {
    state: &'a AppState,
    provider: &'a HttpProvider,
    caller: &'a Caller,
    key: &'a str,
    hold_id: &'a str,
    intent_id: &'a str,
}

impl Saga<'_> {
    /// The payment as the store knows it (linearizable).
    async fn payment(&self) -> Result<Option<PaymentStatus>, Problem> {
        let (r, _) = read(
            self.state,
            Query::GetPayment {
                payment_ref: self.intent_id.to_string(),
            },
            Consistency::Linearizable,
        )
        .await?;
        Ok(match r {
            QueryResult::Payment(p) => p.map(|p| p.status),
            _ => None,
        })
    }

    async fn capture(&self) {
        if let Err(e) = self.provider.capture(self.intent_id).await {
            tracing::warn!(payment = %self.intent_id, error = %e, "capture failed; the reconciler will capture");
        }
    }

    async fn void(&self) {
        if let Err(e) = self.provider.cancel(self.intent_id).await {
            tracing::warn!(payment = %self.intent_id, error = %e, "void failed; the reconciler will void");
        }
    }

    /// After the store refused a step: ack if the store confirmed an order with this payment
    /// (a concurrent attempt or the reconciler did), else fail the payment in the store, void
    /// it and nack with `refusal`.
    async fn settle(&self, refusal: Problem) -> Result<Response, Problem> {
        for _ in 0..2 {
            match self.payment().await? {
                Some(PaymentStatus::Confirmed { order_id }) => {
                    self.capture().await;
                    return self.ack_existing(&order_id).await;
                }
                Some(PaymentStatus::Pending) => {
                    let cmd = Command::PaymentFailed {
                        hold_id: self.hold_id.to_string(),
                        payment_ref: self.intent_id.to_string(),
                        reason: format!("purchase refused: {}", refusal.code),
                    };
                    let k = format!("{}:failed", self.key);
                    if let Err(p) = propose(self.state, &self.caller.user_id, &k, cmd).await {
                        if unknown(&p) {
                            return Err(p);
                        }
                    }
                    // Read again: failed now, or confirmed by someone quicker.
                }
                // Failed, or never started and refused for good: no order can come of it.
                Some(PaymentStatus::Failed { .. }) | None => {
                    self.void().await;
                    return Err(refusal);
                }
            }
        }
        Err(Problem::new(
            "OUTCOME_UNKNOWN",
            "the payment is still in flight; retry with the same Idempotency-Key",
        )
        .retry_after(1))
    }

    /// The ack of an order the store made with this payment.
    async fn ack_existing(&self, order_id: &str) -> Result<Response, Problem> {
        let (r, _) = read(
            self.state,
            Query::GetOrder {
                order_id: order_id.to_string(),
            },
            Consistency::Linearizable,
        )
        .await?;
        let QueryResult::Order(Some(v)) = r else {
            return Err(Problem::internal(format!(
                "payment {} names order {order_id}, which is missing",
                self.intent_id
            )));
        };
        let done = Done::PurchaseConfirmed {
            order_id: v.order.order_id.clone(),
            ticket_ids: v.order.ticket_ids.clone(),
            total_minor: v.order.total_minor,
            currency: v.order.currency.clone(),
        };
        Ok(written(StatusCode::CREATED, &done, v.order.created_index))
    }
}
