//! Browse: events near a point, an event, its dts, a dt's seat map. Served from any node (local
//! reads) through the cache, with the applied index in `X-Applied-Index` and ETags.

use axum::extract::{Path, Query as QueryParams, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use ticketd_raft::client::Consistency;
use ticketd_store::command::{EventFilter, Near};
use ticketd_store::types::GeoPoint;
use ticketd_store::{Query, QueryResult};

use super::calls::{dt_of_event, read};
use crate::cache::Cached;
use crate::problem::Problem;
use crate::resources::catalogue::{
    Dt, DtList, DtWithSeatMap, Event, EventPage, EventSummary, SeatMap,
};
use crate::resources::parse_time_opt;
use crate::state::AppState;

/// Most events per page.
pub const EVENTS_PAGE_MAX: u32 = 100;

/// Reads `query` locally through the cache under `key`; `None` from `pick` is a 404.
async fn cached(
    state: &AppState,
    headers: &HeaderMap,
    key: String,
    max_age_s: u64,
    query: Query,
    pick: impl FnOnce(QueryResult) -> Option<serde_json::Value>,
) -> Result<Response, Problem> {
    if let Some(c) = state.cache.get(&key).await {
        return Ok(c.respond(headers));
    }
    let (result, applied) = read(state, query, Consistency::Local).await?;
    let value = pick(result).ok_or_else(Problem::not_found)?;
    let c = Cached::new(
        serde_json::to_vec(&value).map_err(Problem::internal)?,
        applied,
        max_age_s,
    );
    state.cache.put(key, c.clone()).await;
    Ok(c.respond(headers))
}

/// Filters of the event list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsParams {
    /// Latitude of the caller, degrees.
    lat: Option<f64>,
    /// Longitude of the caller, degrees.
    lon: Option<f64>,
    /// Search radius around (lat, lon), km (default 50).
    radius_km: Option<u32>,
    /// Category.
    category: Option<String>,
    /// Earliest start, RFC 3339.
    from: Option<String>,
    /// Latest start, RFC 3339.
    to: Option<String>,
    /// Full-text search over title, description, performers, category and venue (then the
    /// location and date filters do not apply).
    q: Option<String>,
    /// Page size (at most 100).
    limit: Option<u32>,
    /// Where the next page starts: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// How deep pagination goes: pages past this many results are refused.
pub const EVENTS_DEPTH_MAX: u32 = ticketd_store::limits::QUERY_LIMIT_MAX;

fn decode_cursor(c: &str) -> Result<u32, Problem> {
    c.strip_prefix("o")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n < EVENTS_DEPTH_MAX)
        .ok_or_else(|| Problem::bad_request("cursor is not one this API gave out"))
}

/// Popular events near a point, by category and date range.
#[utoipa::path(get, path = "/v1/events", params(EventsParams), responses(
    (status = 200, description = "events, most popular first", body = EventPage),
    (status = 400, description = "bad filter", body = Problem, content_type = "application/problem+json")))]
pub async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(p): QueryParams<EventsParams>,
) -> Result<Response, Problem> {
    let near = match (p.lat, p.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(Problem::bad_request(
                    "lat must be in [-90, 90] and lon in [-180, 180]",
                ));
            }
            let radius_km = p.radius_km.unwrap_or(50).clamp(1, 20_000);
            Some(Near {
                point: GeoPoint {
                    lat_e6: (lat * 1e6) as i32,
                    lon_e6: (lon * 1e6) as i32,
                },
                radius_m: radius_km * 1000,
            })
        }
        (None, None) => None,
        _ => return Err(Problem::bad_request("give both lat and lon, or neither")),
    };
    let limit = p.limit.unwrap_or(20).clamp(1, EVENTS_PAGE_MAX);
    let offset = p
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    // One more than the page, to know whether another page follows.
    let want = (offset + limit + 1).min(EVENTS_DEPTH_MAX);
    let (key, query) = match p.q.as_deref().map(str::trim) {
        Some(q) if !q.is_empty() => {
            if q.len() > 256 {
                return Err(Problem::bad_request("q is at most 256 bytes"));
            }
            (
                format!("search:{q}:{want}"),
                Query::SearchEvents {
                    text: q.to_string(),
                    limit: want,
                },
            )
        }
        _ => {
            let filter = EventFilter {
                near,
                category: p.category,
                from_ms: parse_time_opt("from", p.from.as_deref())?,
                to_ms: parse_time_opt("to", p.to.as_deref())?,
                limit: want,
            };
            (format!("events:{filter:?}"), Query::BrowseEvents(filter))
        }
    };
    let key = format!("{key}:{offset}:{limit}");
    cached(&state, &headers, key, 5, query, move |r| match r {
        QueryResult::Events(hits) => {
            let more = hits.len() > (offset + limit) as usize && offset + limit < EVENTS_DEPTH_MAX;
            let page: Vec<_> = hits
                .into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect();
            let next = more.then(|| format!("o{}", offset + limit));
            serde_json::to_value(EventPage {
                events: page.into_iter().map(EventSummary::from).collect(),
                next_cursor: next,
            })
            .ok()
        }
        _ => None,
    })
    .await
}

/// One event.
#[utoipa::path(get, path = "/v1/events/{event_id}", params(("event_id" = String, Path, description = "event id")),
    responses((status = 200, description = "the event", body = Event),
              (status = 404, description = "no such event", body = Problem, content_type = "application/problem+json")))]
pub async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
    cached(
        &state,
        &headers,
        format!("event:{event_id}"),
        30,
        Query::GetEvent { event_id },
        |r| match r {
            QueryResult::Event(Some(e)) => serde_json::to_value(Event::from(e)).ok(),
            _ => None,
        },
    )
    .await
}

/// An event's dates and times.
#[utoipa::path(get, path = "/v1/events/{event_id}/dts", params(("event_id" = String, Path, description = "event id")),
    responses((status = 200, description = "its dts", body = DtList)))]
pub async fn list_dts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
    cached(
        &state,
        &headers,
        format!("dts:{event_id}"),
        10,
        Query::ListDts { event_id },
        |r| match r {
            QueryResult::Dts(dts) => serde_json::to_value(DtList {
                dts: dts.into_iter().map(Dt::from).collect(),
            })
            .ok(),
            _ => None,
        },
    )
    .await
}

/// A dt with its seat map: tiers, prices, availability (one state byte per seat).
#[utoipa::path(get, path = "/v1/events/{event_id}/dts/{dt_id}",
    params(("event_id" = String, Path, description = "event id"), ("dt_id" = String, Path, description = "dt id")),
    responses((status = 200, description = "the dt with its seat map's live availability", body = DtWithSeatMap),
              (status = 404, description = "no such dt", body = Problem, content_type = "application/problem+json")))]
pub async fn get_dt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, dt_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let key = format!("seatmap:{event_id}:{dt_id}");
    if let Some(c) = state.cache.get(&key).await {
        return Ok(c.respond(&headers));
    }
    let dt = dt_of_event(&state, &event_id, &dt_id).await?;
    let (map, applied) = read(&state, Query::SeatMap { dt_id }, Consistency::Local).await?;
    let QueryResult::SeatMap(Some(map)) = map else {
        return Err(Problem::not_found());
    };
    let body = DtWithSeatMap {
        seat_map: SeatMap::of(map, &dt),
        dt: dt.into(),
    };
    let body = serde_json::to_vec(&body).map_err(Problem::internal)?;
    let c = Cached::new(body, applied, 1);
    state.cache.put(key, c.clone()).await;
    Ok(c.respond(&headers))
}
