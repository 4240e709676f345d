//! What every route does with the cluster: propose a command and map its outcome, read at a
//! consistency, read a dt, answer a write with the log index it committed at.

use ticketd_raft::client::Consistency;
use ticketd_store::command::Done;
use ticketd_store::{Command, Outcome, Query, QueryResult, Rejection};

use crate::problem::Problem;
use crate::state::AppState;

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
