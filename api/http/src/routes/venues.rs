//! A venue with its layout: name, city, address, location and the seating map with the drawing
//! coordinates of every seat (what a seat map is drawn from). Browse data: a local read through
//! the cache.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ticketd_raft::client::Consistency;
use ticketd_store::{Query, QueryResult};

use super::calls::read;
use crate::cache::Cached;
use crate::problem::Problem;
use crate::resources::catalogue::Venue;
use crate::state::AppState;

/// Seconds a venue may be kept by a CDN or a browser: layouts change rarely.
const VENUE_MAX_AGE_S: u64 = 60;

/// A venue and its layout: sections, rows and seats (with x, y) in seat-index order, GA areas.
#[utoipa::path(get, path = "/v1/venues/{venue_id}", params(("venue_id" = String, Path, description = "venue id")),
    responses((status = 200, description = "the venue with its address, location and seating map", body = Venue),
              (status = 404, description = "no such venue", body = Problem, content_type = "application/problem+json")))]
pub async fn get_venue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(venue_id): Path<String>,
) -> Result<Response, Problem> {
    let key = format!("venue:{venue_id}");
    if let Some(c) = state.cache.get(&key).await {
        return Ok(c.respond(&headers));
    }
    let q = Query::GetVenue {
        venue_id: venue_id.clone(),
    };
    let QueryResult::Venue(Some(venue)) = read(&state, q, Consistency::Local).await?.0 else {
        return Err(Problem::not_found());
    };
    let q = Query::GetVenueLayout { venue_id };
    let (layout, applied) = read(&state, q, Consistency::Local).await?;
    let QueryResult::VenueLayout(layout) = layout else {
        return Err(Problem::internal("unexpected query result"));
    };
    let body = Venue::of(venue, layout);
    let c = Cached::new(
        serde_json::to_vec(&body).map_err(Problem::internal)?,
        applied,
        VENUE_MAX_AGE_S,
    );
    state.cache.put(key, c.clone()).await;
    Ok(c.respond(&headers))
}
