//! What every route does with the cluster: propose a command and map its outcome, read at a
//! consistency, read a dt and where it is, answer a write with the log index it committed at
//! (and a created resource with its `Location`).

use std::sync::Arc;

use ticketd_raft::client::Consistency;
use ticketd_store::command::Done;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::problem::Problem;
use crate::state::{AppState, DtPlace};

/// Proposes `command` for `client_id` with its idempotency key; a rejection becomes its
/// problem (another user's object answers 404, as if it did not exist).
pub async fn propose(
    state: &AppState,
    client_id: &str,
    key: &str,
    command: Command,
) -> Result<(Done, u64), Problem> {
    let w = state.cluster.write(client_id, key, &command).await?;
    match w.reply.outcome {
        Outcome::Done(done) => Ok((done, w.log_index)),
        Outcome::Rejected {
            code: Rejection::NotOwner,
            ..
        } => Err(Problem::not_found()),
        Outcome::Rejected { code, detail } => Err(Problem::new(code.code(), detail)),
    }
}

/// Reads through the cluster at `consistency`.
pub async fn read(
    state: &AppState,
    query: Query,
    consistency: Consistency,
) -> Result<(QueryResult, u64), Problem> {
    let r = state.cluster.read(&query, consistency).await?;
    Ok((r.result, r.applied_index))
}

/// The dt `dt_id`, read locally; `None` when there is none.
pub async fn read_dt(
    state: &AppState,
    dt_id: &str,
) -> Result<Option<ticketd_store::types::Dt>, Problem> {
    let (dt, _) = read(
        state,
        Query::GetDt {
            dt_id: dt_id.to_string(),
        },
        Consistency::Local,
    )
    .await?;
    match dt {
        QueryResult::Dt(dt) => Ok(dt),
        _ => Err(Problem::internal("unexpected answer to GetDt")),
    }
}

/// The dt `dt_id` of event `event_id`, read locally; 404 when there is none or it belongs to
/// another event.
pub async fn dt_of_event(
    state: &AppState,
    event_id: &str,
    dt_id: &str,
) -> Result<ticketd_store::types::Dt, Problem> {
    match read_dt(state, dt_id).await? {
        Some(dt) if dt.event_id == event_id => Ok(dt),
        _ => Err(Problem::not_found()),
    }
}

/// The answer to a write: `body` as JSON with `status`, and the log index it committed at in
/// `X-Log-Index`.
pub fn written(
    status: axum::http::StatusCode,
    body: impl serde::Serialize,
    log_index: u64,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert("x-log-index", log_index.into());
    r
}

/// A created resource: `body` as JSON, 201, its URL in `Location`, and the log index it
/// committed at in `X-Log-Index`.
pub fn created(
    body: impl serde::Serialize,
    location: &str,
    log_index: u64,
) -> Result<axum::response::Response, Problem> {
    let mut r = written(axum::http::StatusCode::CREATED, body, log_index);
    let value = axum::http::HeaderValue::from_str(location).map_err(Problem::internal)?;
    r.headers_mut().insert(axum::http::header::LOCATION, value);
    Ok(r)
}

/// The event and venue of dt `dt_id`, cached (they never change); 404 when there is no such dt.
/// On a miss one read fills it while the other requests for the same dt wait for that read: a
/// dt's sale opening with a burst of holds costs one read, not one per request of the burst.
pub async fn dt_place(state: &AppState, dt_id: &str) -> Result<Arc<DtPlace>, Problem> {
    state
        .dt_places
        .try_get_with_by_ref(dt_id, async {
            read_dt(state, dt_id)
                .await?
                .map(|dt| {
                    Arc::new(DtPlace {
                        event_id: dt.event_id,
                        venue_id: dt.venue_id,
                    })
                })
                .ok_or_else(Problem::not_found)
        })
        .await
        .map_err(|e| (*e).clone())
}

/// The seats of venue `venue_id`, which has a dt, cached (they are frozen then; see
/// [`crate::state::Shared::seatings`]). A node that lags may not have the layout yet: then it
/// is read through the leader, and a venue without one has no seats (not cached).
pub async fn seating(
    state: &AppState,
    venue_id: &str,
) -> Result<Arc<ticketd_store::types::SeatingMap>, Problem> {
    let layout = |consistency| async move {
        let q = Query::GetVenueLayout {
            venue_id: venue_id.to_string(),
        };
        match read(state, q, consistency).await?.0 {
            QueryResult::VenueLayout(l) => Ok(l.map(|l| Arc::new(l.seating_map))),
            _ => Err(Problem::internal("unexpected answer to GetVenueLayout")),
        }
    };
    let cached = state
        .seatings
        .try_get_with_by_ref(venue_id, async {
            match layout(Consistency::Local).await? {
                Some(m) => Ok(m),
                None => layout(Consistency::Linearizable)
                    .await?
                    .ok_or_else(Problem::not_found),
            }
        })
        .await;
    match cached {
        Ok(m) => Ok(m),
        Err(e) if e.status == 404 => Ok(Arc::default()),
        Err(e) => Err((*e).clone()),
    }
}

/// A stored hold as the API answers it, its seats labeled.
pub async fn hold_resource(
    state: &AppState,
    hold: &ticketd_store::types::Hold,
) -> Result<crate::resources::sales::Hold, Problem> {
    let place = dt_place(state, &hold.dt_id).await?;
    let map = seating(state, &place.venue_id).await?;
    Ok(crate::resources::sales::Hold::of(hold, &map))
}
