//! Scans at the venue gate: the rotating code is checked here (with a step of clock tolerance),
//! then the linearizable `Scan` command admits the ticket at most once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use ticketd_raft::client::Consistency;
use ticketd_store::command::Done;
use ticketd_store::{Command, Query, QueryResult};

use super::calls::{propose, read};
use crate::auth::{Caller, Role};
use crate::extract::IdempotencyKey;
use crate::problem::Problem;
use crate::resources::sales::{ScanAnswer, ScanVerdict};
use crate::state::AppState;
use ticketd_notify::tickets::{self, CodeCheck};

/// Longest gate name.
pub const GATE_BYTES_MAX: usize = 64;

/// What a scanner read from a ticket: the QR payload, or the ticket id and code typed in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The QR payload as read (`TKT1.<ticket id>.<code>`).
    qr_payload: Option<String>,
    /// The ticket id, when typed in.
    ticket_id: Option<String>,
    /// The six-digit code, when typed in.
    code: Option<String>,
    /// The dt being admitted to.
    dt_id: String,
    /// The gate.
    gate: String,
}

/// Scans a ticket at a gate (scanner role): admitted once; otherwise refused with the reason.
#[utoipa::path(post, path = "/v1/scans", request_body = ScanRequest,
    params(("Idempotency-Key" = String, Header, description = "retry key: one per physical scan")),
    security(("bearer" = [])),
    responses((status = 200, description = "the verdict (admitted or refused, with the reason)", body = ScanAnswer),
              (status = 400, description = "neither a payload nor a ticket id and code", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "not a scanner", body = Problem, content_type = "application/problem+json")))]
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Json(req): Json<ScanRequest>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Scanner, Role::Admin])?;
    if req.gate.is_empty() || req.gate.len() > GATE_BYTES_MAX {
        return Err(Problem::bad_request(format!(
            "gate must be 1 to {GATE_BYTES_MAX} bytes"
        )));
    }
    let (ticket_id, code) = match (&req.qr_payload, &req.ticket_id, &req.code) {
        (Some(p), None, None) => match tickets::parse_payload(p) {
            Some((t, c)) => (t.to_string(), c.to_string()),
            None => {
                return Ok(
                    Json(ScanAnswer::refused(ScanVerdict::ForgedCode, None, None)).into_response(),
                )
            }
        },
        (None, Some(t), Some(c)) => (t.clone(), c.clone()),
        _ => {
            return Err(Problem::bad_request(
                "give qr_payload, or ticket_id with code",
            ))
        }
    };
    let (r, _) = read(
        &state,
        Query::GetTicket {
            ticket_id: ticket_id.clone(),
        },
        Consistency::Linearizable,
    )
    .await?;
    let QueryResult::Ticket(Some(t)) = r else {
        return Ok(Json(ScanAnswer::refused(
            ScanVerdict::UnknownTicket,
            Some(ticket_id),
            None,
        ))
        .into_response());
    };
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0);
    match tickets::check_code(&t.secret, &code, now_s) {
        CodeCheck::Valid => {}
        CodeCheck::Stale => {
            let a = ScanAnswer::refused(
                ScanVerdict::StaleCode,
                Some(t.ticket_id),
                Some(t.seat_label),
            );
            return Ok(Json(a).into_response());
        }
        CodeCheck::Forged => {
            let a = ScanAnswer::refused(
                ScanVerdict::ForgedCode,
                Some(t.ticket_id),
                Some(t.seat_label),
            );
            return Ok(Json(a).into_response());
        }
    }
    let cmd = Command::Scan {
        ticket_id: t.ticket_id.clone(),
        dt_id: req.dt_id,
        gate: req.gate,
    };
    let (done, index) = propose(&state, &caller.user_id, &key, cmd).await?;
    let Done::Scanned { verdict, .. } = done else {
        return Err(Problem::internal("unexpected outcome of a scan"));
    };
    let a = ScanAnswer::of(&verdict, t.ticket_id, t.seat_label);
    Ok(super::calls::written(StatusCode::OK, &a, index))
}
