//! The SMS provider simulator (`ticketd-sim sms`): accepts messages, keeps each id once, lists
//! them for tests.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};

use ticketd_notify::sms::Sms;

/// Most messages kept.
const MESSAGES_MAX: usize = 100_000;

#[derive(Default)]
struct Inbox {
    by_id: BTreeMap<String, Sms>,
    deliveries: u64,
}

/// The simulator's routes.
pub fn router() -> Router {
    Router::new()
        .route("/v1/messages", post(accept).get(list))
        .with_state(Arc::new(Mutex::new(Inbox::default())))
}

async fn accept(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    Json(m): Json<Sms>,
) -> StatusCode {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    if key != Some(m.id.as_str()) || !m.to.starts_with('+') || m.text.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    let mut inbox = inbox.lock().expect("inbox lock");
    inbox.deliveries += 1;
    if inbox.by_id.len() >= MESSAGES_MAX && !inbox.by_id.contains_key(&m.id) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    inbox.by_id.entry(m.id.clone()).or_insert(m);
    StatusCode::ACCEPTED
}

async fn list(State(inbox): State<Arc<Mutex<Inbox>>>) -> Json<serde_json::Value> {
    let inbox = inbox.lock().expect("inbox lock");
    Json(serde_json::json!({
        "deliveries": inbox.deliveries,
        "messages": inbox.by_id.values().collect::<Vec<_>>(),
    }))
}
