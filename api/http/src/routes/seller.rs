//! Seller routes: venues, events, dts with tiers and prices, sale windows, publish, cancel, and a
//! sales report. A seller's token names the seller (`sub` = seller id); a seller acts only on
//! its own events (another seller's answers 404), an admin on any.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use ticketd_raft::client::Consistency;
use ticketd_store::command::Done;
use ticketd_store::types::{self as st, GeoPoint};
use ticketd_store::{Command, Query, QueryResult};

use super::calls::{created, propose, read, written};
use crate::auth::{Caller, Role};
use crate::extract::IdempotencyKey;
use crate::problem::Problem;
use crate::resources::catalogue::{Dt, DtCancellation, Event, SeatingMap, TierSpec, Venue};
use crate::resources::parse_time;
use crate::resources::people::{PlanName, SellerPlan};
use crate::state::AppState;

/// A venue: where it is and its seating map (sections, rows, seats with drawing coordinates,
/// general-admission areas).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueRequest {
    /// Display name.
    name: String,
    /// City.
    city: String,
    /// Postal address.
    address: String,
    /// Latitude, degrees.
    lat: f64,
    /// Longitude, degrees.
    lon: f64,
    /// `{"sections": [{"section_id", "name", "rows": [{"label", "seats": [{"number", "x", "y"}]}]}],
    /// "ga_areas": [{"area_id", "name", "capacity"}]}`.
    seating_map: SeatingMap,
}

fn geo(lat: f64, lon: f64) -> Result<GeoPoint, Problem> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Problem::bad_request(
            "lat must be in [-90, 90] and lon in [-180, 180]",
        ));
    }
    Ok(GeoPoint {
        lat_e6: (lat * 1e6).round() as i32,
        lon_e6: (lon * 1e6).round() as i32,
    })
}

/// Creates a venue with its seating map (seller or admin).
#[utoipa::path(post, path = "/v1/venues", request_body = VenueRequest,
    params(("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 201, description = "created: the venue, its URL in `Location`", body = Venue, headers(("Location" = String, description = "the new resource's URL"))),
              (status = 422, description = "invalid map", body = Problem, content_type = "application/problem+json")))]
pub async fn create_venue(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<VenueRequest>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Seller, Role::Admin])?;
    let geo = geo(req.lat, req.lon)?;
    let venue_id = format!("v-{}", state.ids.hex(&["venue", &caller.user_id, &key]));
    let create = Command::CreateVenue {
        venue_id: venue_id.clone(),
        name: req.name.clone(),
        city: req.city.clone(),
    };
    propose(&state, &caller.user_id, &format!("{key}:create"), create).await?;
    let seating_map: st::SeatingMap = req.seating_map.into();
    let layout = Command::SetVenueLayout {
        venue_id: venue_id.clone(),
        address: req.address.clone(),
        geo,
        seating_map: seating_map.clone(),
    };
    let (_, index) = propose(&state, &caller.user_id, &format!("{key}:layout"), layout).await?;
    let venue = Venue::of(
        st::Venue {
            venue_id: venue_id.clone(),
            name: req.name,
            city: req.city,
            created_index: 0,
        },
        Some(st::VenueLayout {
            venue_id: venue_id.clone(),
            address: req.address,
            geo,
            seating_map,
            updated_index: index,
        }),
    );
    created(&venue, &format!("/v1/venues/{venue_id}"), index)
}

/// An event.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// Title.
    title: String,
    /// Description.
    #[serde(default)]
    description: String,
    /// Category ("concert", "sports", ...).
    category: String,
    /// Performers.
    #[serde(default)]
    performers: Vec<String>,
}

/// Creates an event of the calling seller.
#[utoipa::path(post, path = "/v1/events", request_body = EventRequest,
    params(("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 201, description = "created: the event, its URL in `Location`", body = Event, headers(("Location" = String, description = "the new resource's URL"))),
              (status = 403, description = "not a seller", body = Problem, content_type = "application/problem+json")))]
pub async fn create_event(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<EventRequest>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Seller])?;
    let event_id = format!("e-{}", state.ids.hex(&["event", &caller.user_id, &key]));
    let cmd = Command::CreateEvent {
        event_id: event_id.clone(),
        seller_id: caller.user_id.clone(),
        title: req.title.clone(),
        description: req.description.clone(),
        category: req.category.clone(),
        performers: req.performers.clone(),
    };
    let (_, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let event = Event {
        event_id: event_id.clone(),
        seller_id: caller.user_id.clone(),
        title: req.title,
        description: req.description,
        category: req.category,
        performers: req.performers,
        popularity: 0,
    };
    created(&event, &format!("/v1/events/{event_id}"), index)
}

/// The event, if the caller may manage it (its seller, or an admin); otherwise 404.
async fn managed_event(
    state: &AppState,
    caller: &Caller,
    event_id: &str,
) -> Result<st::Event, Problem> {
    caller.require(&[Role::Seller, Role::Admin])?;
    let q = Query::GetEvent {
        event_id: event_id.to_string(),
    };
    match read(state, q, Consistency::Linearizable).await?.0 {
        QueryResult::Event(Some(e))
            if caller.role == Role::Admin || e.seller_id == caller.user_id =>
        {
            Ok(e)
        }
        _ => Err(Problem::not_found()),
    }
}

/// Checks that `dt_id` is a dt of `event_id`.
async fn dt_of(state: &AppState, event_id: &str, dt_id: &str) -> Result<st::Dt, Problem> {
    let q = Query::GetDt {
        dt_id: dt_id.to_string(),
    };
    match read(state, q, Consistency::Linearizable).await?.0 {
        QueryResult::Dt(Some(dt)) if dt.event_id == event_id => Ok(dt),
        _ => Err(Problem::not_found()),
    }
}

/// A date and time of an event at a venue, with its tiers, prices and sale window.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DtRequest {
    /// The venue.
    venue_id: String,
    /// Start, RFC 3339.
    #[schema(format = DateTime, example = "2027-06-01T19:30:00Z")]
    starts_at: String,
    /// IANA time zone of the venue ("Europe/Oslo").
    time_zone: String,
    /// Its price tiers.
    tiers: Vec<TierSpec>,
    /// Sale opens, RFC 3339.
    #[schema(format = DateTime, example = "2027-03-01T10:00:00Z")]
    sale_starts_at: String,
    /// Sale closes, RFC 3339.
    #[schema(format = DateTime, example = "2027-06-01T18:30:00Z")]
    sale_ends_at: String,
    /// Put it on sale at once (otherwise a draft until published).
    #[serde(default)]
    publish: bool,
}

/// Creates a dt of the seller's event.
#[utoipa::path(post, path = "/v1/events/{event_id}/dts", request_body = DtRequest,
    params(("event_id" = String, Path, description = "event id"), ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 201, description = "created: the dt, its URL in `Location`", body = Dt, headers(("Location" = String, description = "the new resource's URL"))),
              (status = 404, description = "no such event of yours", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "invalid tiers or window", body = Problem, content_type = "application/problem+json")))]
pub async fn create_dt(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path(event_id): Path<String>,
    Json(req): Json<DtRequest>,
) -> Result<Response, Problem> {
    managed_event(&state, &caller, &event_id).await?;
    let dt_id = format!("d-{}", state.ids.hex(&["dt", &caller.user_id, &key]));
    let cmd = Command::CreateDt {
        dt_id: dt_id.clone(),
        event_id: event_id.clone(),
        venue_id: req.venue_id,
        starts_at_ms: parse_time("starts_at", &req.starts_at)?,
        time_zone: req.time_zone,
        tiers: req.tiers.into_iter().map(Into::into).collect(),
        sale_starts_at_ms: parse_time("sale_starts_at", &req.sale_starts_at)?,
        sale_ends_at_ms: parse_time("sale_ends_at", &req.sale_ends_at)?,
    };
    let (_, mut index) = propose(&state, &caller.user_id, &key, cmd).await?;
    if req.publish {
        let p = Command::PublishDt {
            dt_id: dt_id.clone(),
        };
        index = propose(&state, &caller.user_id, &format!("{key}:publish"), p)
            .await?
            .1;
    }
    let dt = Dt::from(dt_of(&state, &event_id, &dt_id).await?);
    created(&dt, &format!("/v1/events/{event_id}/dts/{dt_id}"), index)
}

/// A new sale window.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleWindow {
    /// Sale opens, RFC 3339.
    #[schema(format = DateTime, example = "2027-03-01T10:00:00Z")]
    sale_starts_at: String,
    /// Sale closes, RFC 3339.
    #[schema(format = DateTime, example = "2027-06-01T18:30:00Z")]
    sale_ends_at: String,
}

/// Moves a dt's sale window.
#[utoipa::path(put, path = "/v1/events/{event_id}/dts/{dt_id}/sale-window", request_body = SaleWindow,
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "moved: the dt now", body = Dt),
              (status = 404, description = "no such dt of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn change_sale_window(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((event_id, dt_id)): Path<(String, String)>,
    Json(req): Json<SaleWindow>,
) -> Result<Response, Problem> {
    managed_event(&state, &caller, &event_id).await?;
    dt_of(&state, &event_id, &dt_id).await?;
    let cmd = Command::ChangeSaleWindow {
        dt_id: dt_id.clone(),
        sale_starts_at_ms: parse_time("sale_starts_at", &req.sale_starts_at)?,
        sale_ends_at_ms: parse_time("sale_ends_at", &req.sale_ends_at)?,
    };
    let (_, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let dt = Dt::from(dt_of(&state, &event_id, &dt_id).await?);
    Ok(written(StatusCode::OK, &dt, index))
}

/// Puts a draft dt on sale.
#[utoipa::path(post, path = "/v1/events/{event_id}/dts/{dt_id}/publish",
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "published: the dt now", body = Dt),
              (status = 404, description = "no such dt of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn publish_dt(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((event_id, dt_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    managed_event(&state, &caller, &event_id).await?;
    dt_of(&state, &event_id, &dt_id).await?;
    let publish = Command::PublishDt {
        dt_id: dt_id.clone(),
    };
    let (_, index) = propose(&state, &caller.user_id, &key, publish).await?;
    let dt = Dt::from(dt_of(&state, &event_id, &dt_id).await?);
    Ok(written(StatusCode::OK, &dt, index))
}

/// Why a dt is called off.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelDtRequest {
    /// Told to the buyers.
    reason: String,
}

/// Calls a dt off: holds released, orders canceled, refunds owed.
#[utoipa::path(post, path = "/v1/events/{event_id}/dts/{dt_id}/cancel", request_body = CancelDtRequest,
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id"),
           ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "called off: the dt now, and what that released", body = DtCancellation),
              (status = 404, description = "no such dt of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_dt(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path((event_id, dt_id)): Path<(String, String)>,
    Json(req): Json<CancelDtRequest>,
) -> Result<Response, Problem> {
    managed_event(&state, &caller, &event_id).await?;
    dt_of(&state, &event_id, &dt_id).await?;
    let cmd = Command::CancelDt {
        dt_id: dt_id.clone(),
        reason: req.reason,
    };
    let (done, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let Done::DtCanceled {
        holds_released,
        orders_canceled,
        ..
    } = done
    else {
        return Err(Problem::internal("unexpected outcome of a cancellation"));
    };
    let cancellation = DtCancellation {
        dt: Dt::from(dt_of(&state, &event_id, &dt_id).await?),
        holds_released,
        orders_canceled,
    };
    Ok(written(StatusCode::OK, &cancellation, index))
}

/// Sales of one tier.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierSales {
    /// Tier id.
    tier_id: String,
    /// Display name.
    name: String,
    /// Ticket price, minor units.
    price_minor: i64,
    /// Seats and places.
    capacity: u32,
    /// Sold.
    sold: u32,
    /// In live holds.
    held: u32,
    /// Neither.
    available: u32,
    /// sold x price.
    gross_minor: i64,
}

/// A dt's sales: totals for every plan, per tier for VIP sellers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"dt_id": "d-51c2e0", "plan": "vip", "sold": 1, "capacity": 2,
    "gross_minor": 45000, "currency": "DKK", "tiers": [{"tier_id": "front", "name": "Front",
    "price_minor": 45000, "capacity": 2, "sold": 1, "held": 0, "available": 1,
    "gross_minor": 45000}]}))]
pub struct SalesReport {
    /// The dt.
    dt_id: String,
    /// The seller's plan.
    plan: PlanName,
    /// Tickets sold.
    sold: u32,
    /// Capacity over all tiers.
    capacity: u32,
    /// Face value of the tickets sold, minor units.
    gross_minor: i64,
    /// Currency.
    currency: String,
    /// Per tier (VIP plan only; empty on the standard plan).
    tiers: Vec<TierSales>,
}

/// A dt's sales report for its seller (per tier on the VIP plan).
#[utoipa::path(get, path = "/v1/events/{event_id}/dts/{dt_id}/sales",
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the report", body = SalesReport),
              (status = 404, description = "no such dt of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn sales_report(
    State(state): State<AppState>,
    caller: Caller,
    Path((event_id, dt_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let event = managed_event(&state, &caller, &event_id).await?;
    dt_of(&state, &event_id, &dt_id).await?;
    let q = Query::GetSeller {
        seller_id: event.seller_id.clone(),
    };
    let QueryResult::Seller(Some(seller)) = read(&state, q, Consistency::Linearizable).await?.0
    else {
        return Err(Problem::not_found());
    };
    let q = Query::SeatMap {
        dt_id: dt_id.clone(),
    };
    let QueryResult::SeatMap(Some(map)) = read(&state, q, Consistency::Linearizable).await?.0
    else {
        return Err(Problem::not_found());
    };
    let vip = seller.plan == st::SellerPlan::Vip || caller.role == Role::Admin;
    let tiers: Vec<TierSales> = map
        .tiers
        .iter()
        .map(|t| TierSales {
            tier_id: t.tier_id.clone(),
            name: t.name.clone(),
            price_minor: t.price_minor,
            capacity: t.capacity,
            sold: t.sold,
            held: t.held,
            available: t.available,
            gross_minor: i64::from(t.sold) * t.price_minor,
        })
        .collect();
    let report = SalesReport {
        dt_id,
        plan: seller.plan.into(),
        sold: tiers.iter().map(|t| t.sold).sum(),
        capacity: tiers.iter().map(|t| t.capacity).sum(),
        gross_minor: tiers.iter().map(|t| t.gross_minor).sum(),
        currency: map
            .tiers
            .first()
            .map(|t| t.currency.clone())
            .unwrap_or_default(),
        tiers: if vip { tiers } else { Vec::new() },
    };
    Ok(Json(report).into_response())
}

/// The platform fee on the VIP plan, in basis points (the standard plan's is
/// [`super::users::SELLER_FEE_BPS_STANDARD`]).
pub const SELLER_FEE_BPS_VIP: u32 = 500;

/// A seller's plan.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The plan.
    plan: PlanName,
}

/// Moves a seller to a plan (that seller or an admin): VIP lowers the platform fee on holds
/// placed from now on and unlocks the per-tier sales report.
#[utoipa::path(put, path = "/v1/sellers/{seller_id}/plan", request_body = PlanRequest,
    params(("seller_id" = String, Path, description = "seller id"), ("Idempotency-Key" = String, Header, description = "retry key")),
    security(("bearer" = [])),
    responses((status = 200, description = "the plan and fee now", body = SellerPlan),
              (status = 404, description = "no such seller of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn set_plan(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Path(seller_id): Path<String>,
    Json(req): Json<PlanRequest>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Seller, Role::Admin])?;
    if caller.role != Role::Admin && caller.user_id != seller_id {
        return Err(Problem::not_found());
    }
    let fee_bps = match req.plan {
        PlanName::Standard => super::users::SELLER_FEE_BPS_STANDARD,
        PlanName::Vip => SELLER_FEE_BPS_VIP,
    };
    let cmd = Command::UpdateSeller {
        seller_id: seller_id.clone(),
        fee_bps,
        plan: req.plan.into(),
    };
    let (_, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let plan = SellerPlan {
        seller_id,
        plan: req.plan,
        fee_bps,
    };
    Ok(written(StatusCode::OK, &plan, index))
}
