//! A payment provider simulator, run as its own process (`ticketd-sim pay`): the provider's HTTP
//! API with intents kept in memory and, if given a file, persisted across restarts.
//!
//! Faults on request, by payment-method token at authorization:
//! - `pm_card_visa` (or any other token): authorized;
//! - `pm_card_declined`: 402, nothing authorized;
//! - `pm_card_slow`: authorized after 2 s;
//! - `pm_card_timeout`: authorized, then no answer for 60 s (the caller times out);
//! - `pm_card_fail_after`: authorized, then a 500 (the caller cannot tell);
//! - `pm_card_wrong_amount`: authorizes one minor unit more than asked, and says so (a provider
//!   whose answer does not match the request).
//!
//! And for the next calls of an operation, through `POST /_control/faults`
//! `{"op": "capture"|"cancel"|"refund"|"authorize", "fault": "fail_after"|"fail_before"|"timeout"|"slow", "count": N}`.
//!
//! Refunds are partial and keyed (`POST /v1/refunds` with an `Idempotency-Key`): the same key
//! refunds once. `GET /v1/payment_intents?created_gte=MS&starting_after=ID&limit=N` pages through
//! intents oldest first; `GET /v1/payment_intents/search?key=K&value=V` finds them by metadata;
//! `GET /_control/refunds` lists every refund made by key (the books, for checkers).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use ticketd_money::provider::{
    CreateIntent, Intent, IntentPage, IntentStatus, RefundRequest, LIST_LIMIT_MAX,
};

/// Most queued injected faults.
const FAULTS_MAX: usize = 1000;
/// Most intents kept.
const INTENTS_MAX: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Fault {
    /// Act, then answer 500.
    FailAfter,
    /// Answer 500 without acting.
    FailBefore,
    /// Act, then do not answer for 60 s.
    Timeout,
    /// Wait 2 s, then act and answer.
    Slow,
}

#[derive(Debug, Deserialize)]
struct FaultRequest {
    op: String,
    fault: Fault,
    count: usize,
}

#[derive(Default, Serialize, Deserialize)]
struct Book {
    intents: BTreeMap<String, Intent>,
    by_key: BTreeMap<String, String>,
    next_id: u64,
    /// Refund idempotency key -> (intent, amount).
    #[serde(default)]
    refunds: BTreeMap<String, (String, i64)>,
    #[serde(skip)]
    faults: BTreeMap<String, VecDeque<Fault>>,
}

/// The simulator's state.
#[derive(Clone)]
pub struct Simulator {
    book: Arc<Mutex<Book>>,
    state_file: Option<PathBuf>,
}

enum Reply {
    Ok(Intent),
    Err(StatusCode, String),
}

impl Simulator {
    /// A simulator, loading `state_file` if it exists.
    pub fn new(state_file: Option<PathBuf>) -> anyhow::Result<Self> {
        let book = match &state_file {
            Some(p) if p.exists() => serde_json::from_slice(&std::fs::read(p)?)?,
            _ => Book::default(),
        };
        Ok(Self {
            book: Arc::new(Mutex::new(book)),
            state_file,
        })
    }

    /// The simulator's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/payment_intents", post(create).get(list))
            .route("/v1/payment_intents/search", get(search))
            .route("/v1/payment_intents/{id}", get(fetch))
            .route("/v1/payment_intents/{id}/capture", post(capture))
            .route("/v1/payment_intents/{id}/cancel", post(cancel))
            .route("/v1/refunds", post(refund))
            .route("/_control/faults", post(inject))
            .route("/_control/refunds", get(refunds))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self)
    }

    fn persist(&self, book: &Book) {
        if let Some(p) = &self.state_file {
            let tmp = p.with_extension("tmp");
            let written = serde_json::to_vec(book)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|_| std::fs::rename(&tmp, p));
            if let Err(e) = written {
                tracing::error!(error = %e, "payment simulator could not persist its state");
            }
        }
    }

    fn next_fault(&self, op: &str) -> Option<Fault> {
        self.book
            .lock()
            .expect("book lock")
            .faults
            .get_mut(op)
            .and_then(|q| q.pop_front())
    }

    /// Runs `act` under the op's injected fault, if any.
    async fn with_fault(&self, op: &str, act: impl FnOnce(&mut Book) -> Reply) -> Response {
        let fault = self.next_fault(op);
        if fault == Some(Fault::Slow) {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if fault == Some(Fault::FailBefore) {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected failure before acting",
            )
                .into_response();
        }
        let reply = {
            let mut book = self.book.lock().expect("book lock");
            let r = act(&mut book);
            self.persist(&book);
            r
        };
        match fault {
            Some(Fault::FailAfter) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected failure after acting",
            )
                .into_response(),
            Some(Fault::Timeout) => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                (StatusCode::GATEWAY_TIMEOUT, "injected timeout").into_response()
            }
            _ => match reply {
                Reply::Ok(i) => Json(i).into_response(),
                Reply::Err(s, m) => (s, m).into_response(),
            },
        }
    }
}

async fn create(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Json(req): Json<CreateIntent>,
) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return (StatusCode::BAD_REQUEST, "Idempotency-Key required").into_response();
    };
    if req.amount <= 0 || req.currency.len() != 3 {
        return (
            StatusCode::BAD_REQUEST,
            "amount must be positive and currency a 3-letter code",
        )
            .into_response();
    }
    let token = req.payment_method.clone();
    if token == "pm_card_declined" {
        return (StatusCode::PAYMENT_REQUIRED, "card_declined").into_response();
    }
    if token == "pm_card_slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let token_fault = match token.as_str() {
        "pm_card_timeout" => Some(Fault::Timeout),
        "pm_card_fail_after" => Some(Fault::FailAfter),
        _ => None,
    };
    if let Some(f) = token_fault {
        sim.book
            .lock()
            .expect("book lock")
            .faults
            .entry("authorize".into())
            .or_default()
            .push_front(f);
    }
    let skew = i64::from(token == "pm_card_wrong_amount");
    sim.with_fault("authorize", move |book| {
        if let Some(id) = book.by_key.get(&key) {
            return match book.intents.get(id) {
                Some(i) if i.amount == req.amount + skew && i.currency == req.currency => {
                    Reply::Ok(i.clone())
                }
                Some(_) => Reply::Err(
                    StatusCode::BAD_REQUEST,
                    "idempotency key reused with other parameters".into(),
                ),
                None => Reply::Err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "dangling idempotency key".into(),
                ),
            };
        }
        if book.intents.len() >= INTENTS_MAX {
            return Reply::Err(StatusCode::SERVICE_UNAVAILABLE, "simulator full".into());
        }
        book.next_id += 1;
        let intent = Intent {
            id: format!("pi_{:08}", book.next_id),
            amount: req.amount + skew,
            currency: req.currency.clone(),
            status: IntentStatus::RequiresCapture,
            metadata: req.metadata.clone(),
            amount_refunded: 0,
            amount_captured: 0,
            created_ms: now_ms(),
        };
        book.by_key.insert(key.clone(), intent.id.clone());
        book.intents.insert(intent.id.clone(), intent.clone());
        Reply::Ok(intent)
    })
    .await
}

fn transition(
    book: &mut Book,
    id: &str,
    f: impl FnOnce(&mut Intent) -> Result<(), String>,
) -> Reply {
    match book.intents.get_mut(id) {
        None => Reply::Err(StatusCode::NOT_FOUND, "no such intent".into()),
        Some(i) => match f(i) {
            Ok(()) => Reply::Ok(i.clone()),
            Err(m) => Reply::Err(StatusCode::BAD_REQUEST, m),
        },
    }
}

async fn capture(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    sim.with_fault("capture", move |book| {
        transition(book, &id, |i| match i.status {
            IntentStatus::RequiresCapture => {
                i.status = IntentStatus::Succeeded;
                i.amount_captured = i.amount;
                Ok(())
            }
            IntentStatus::Succeeded => Ok(()),
            s => Err(format!("cannot capture an intent in state {s:?}")),
        })
    })
    .await
}

async fn cancel(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    sim.with_fault("cancel", move |book| {
        transition(book, &id, |i| match i.status {
            IntentStatus::RequiresCapture | IntentStatus::Canceled => {
                i.status = IntentStatus::Canceled;
                Ok(())
            }
            s => Err(format!("cannot cancel an intent in state {s:?}")),
        })
    })
    .await
}

async fn refund(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Json(req): Json<RefundRequest>,
) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return (StatusCode::BAD_REQUEST, "Idempotency-Key required").into_response();
    };
    sim.with_fault("refund", move |book| {
        match book.refunds.get(&key) {
            Some((id, amount)) if *id == req.payment_intent && *amount == req.amount => {
                return match book.intents.get(id) {
                    Some(i) => Reply::Ok(i.clone()),
                    None => Reply::Err(StatusCode::INTERNAL_SERVER_ERROR, "dangling refund".into()),
                };
            }
            Some(_) => {
                return Reply::Err(
                    StatusCode::BAD_REQUEST,
                    "idempotency key reused with other parameters".into(),
                )
            }
            None => {}
        }
        let r = transition(book, &req.payment_intent, |i| {
            if !matches!(i.status, IntentStatus::Succeeded | IntentStatus::Refunded) {
                return Err(format!("cannot refund an intent in state {:?}", i.status));
            }
            if req.amount <= 0 || req.amount > i.net_captured() {
                return Err(format!(
                    "refund of {} exceeds the {} left to refund",
                    req.amount,
                    i.net_captured()
                ));
            }
            i.amount_refunded += req.amount;
            if i.amount_refunded == i.amount_captured {
                i.status = IntentStatus::Refunded;
            }
            Ok(())
        });
        if matches!(r, Reply::Ok(_)) {
            book.refunds
                .insert(key, (req.payment_intent.clone(), req.amount));
        }
        r
    })
    .await
}

/// One refund of the books, for checkers: its key, intent and amount.
#[derive(Serialize)]
struct RefundRow {
    key: String,
    intent_id: String,
    amount: i64,
}

/// Every refund made, by key: the simulator's own books, for checkers.
async fn refunds(State(sim): State<Simulator>) -> Json<Vec<RefundRow>> {
    let book = sim.book.lock().expect("book lock");
    Json(
        book.refunds
            .iter()
            .map(|(key, (intent_id, amount))| RefundRow {
                key: key.clone(),
                intent_id: intent_id.clone(),
                amount: *amount,
            })
            .collect(),
    )
}

async fn fetch(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    match sim.book.lock().expect("book lock").intents.get(&id) {
        Some(i) => Json(i.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such intent").into_response(),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    key: String,
    value: String,
}

async fn search(State(sim): State<Simulator>, Query(q): Query<SearchQuery>) -> Json<Vec<Intent>> {
    let book = sim.book.lock().expect("book lock");
    Json(
        book.intents
            .values()
            .filter(|i| i.metadata.get(&q.key) == Some(&q.value))
            .cloned()
            .collect(),
    )
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    created_gte: i64,
    starting_after: Option<String>,
    limit: Option<u32>,
}

async fn list(State(sim): State<Simulator>, Query(q): Query<ListQuery>) -> Json<IntentPage> {
    use std::ops::Bound;
    let book = sim.book.lock().expect("book lock");
    let limit = q.limit.unwrap_or(LIST_LIMIT_MAX).clamp(1, LIST_LIMIT_MAX) as usize;
    let from = match &q.starting_after {
        Some(a) => Bound::Excluded(a.clone()),
        None => Bound::Unbounded,
    };
    // Ids grow with creation, so id order is creation order.
    let mut data: Vec<Intent> = book
        .intents
        .range((from, Bound::Unbounded))
        .map(|(_, i)| i)
        .filter(|i| i.created_ms >= q.created_gte)
        .take(limit + 1)
        .cloned()
        .collect();
    let has_more = data.len() > limit;
    data.truncate(limit);
    Json(IntentPage { data, has_more })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or(0)
}

async fn inject(State(sim): State<Simulator>, Json(f): Json<FaultRequest>) -> Response {
    if !["authorize", "capture", "cancel", "refund"].contains(&f.op.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            "op must be authorize, capture, cancel or refund",
        )
            .into_response();
    }
    let mut book = sim.book.lock().expect("book lock");
    let q = book.faults.entry(f.op).or_default();
    for _ in 0..f.count.min(FAULTS_MAX.saturating_sub(q.len())) {
        q.push_back(f.fault);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketd_money::provider::{HttpProvider, PaymentError, PaymentProvider};

    async fn start() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = Simulator::new(None).unwrap().router();
        let h = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (addr, h)
    }

    fn req(pm: &str, hold: &str) -> CreateIntent {
        CreateIntent {
            amount: 12_000,
            currency: "EUR".into(),
            payment_method: pm.into(),
            metadata: [("hold_id".to_string(), hold.to_string())].into(),
        }
    }

    #[tokio::test]
    async fn authorize_capture_refund_idempotently_and_declines_and_unknowns() {
        let (addr, _h) = start().await;
        let p = HttpProvider::new(&addr, Duration::from_millis(800)).unwrap();
        let a = p.authorize("h1", &req("pm_card_visa", "h1")).await.unwrap();
        assert_eq!(a.status, IntentStatus::RequiresCapture);
        assert_eq!(
            p.authorize("h1", &req("pm_card_visa", "h1"))
                .await
                .unwrap()
                .id,
            a.id,
            "same key, same intent"
        );
        assert_eq!(
            p.capture(&a.id).await.unwrap().status,
            IntentStatus::Succeeded
        );
        assert_eq!(
            p.capture(&a.id).await.unwrap().status,
            IntentStatus::Succeeded,
            "capture is idempotent"
        );
        assert!(matches!(
            p.cancel(&a.id).await,
            Err(PaymentError::Rejected(_))
        ));
        let part = p.refund(&a.id, 2_000, "r1").await.unwrap();
        assert_eq!(
            (part.status, part.amount_refunded, part.net_captured()),
            (IntentStatus::Succeeded, 2_000, 10_000),
            "a partial refund"
        );
        assert_eq!(
            p.refund(&a.id, 2_000, "r1").await.unwrap().amount_refunded,
            2_000,
            "the same key refunds once"
        );
        assert!(
            matches!(
                p.refund(&a.id, 3_000, "r1").await,
                Err(PaymentError::Rejected(_))
            ),
            "the same key with another amount is refused"
        );
        assert!(
            matches!(
                p.refund(&a.id, 10_001, "r2").await,
                Err(PaymentError::Rejected(_))
            ),
            "never more than captured"
        );
        let full = p.refund(&a.id, 10_000, "r2").await.unwrap();
        assert_eq!(
            (full.status, full.net_captured()),
            (IntentStatus::Refunded, 0)
        );

        assert!(matches!(
            p.authorize("h2", &req("pm_card_declined", "h2")).await,
            Err(PaymentError::Declined(_))
        ));
        assert!(
            p.list_by_metadata("hold_id", "h2")
                .await
                .unwrap()
                .is_empty(),
            "a decline authorizes nothing"
        );

        assert!(matches!(
            p.authorize("h3", &req("pm_card_timeout", "h3")).await,
            Err(PaymentError::Unknown(_))
        ));
        let found = p.list_by_metadata("hold_id", "h3").await.unwrap();
        assert_eq!(
            found.len(),
            1,
            "the timed-out authorization happened and is found by metadata"
        );
        assert!(matches!(
            p.authorize("h4", &req("pm_card_fail_after", "h4")).await,
            Err(PaymentError::Unknown(_))
        ));
        assert_eq!(
            p.list_by_metadata("hold_id", "h4").await.unwrap()[0].status,
            IntentStatus::RequiresCapture
        );
        assert_eq!(
            p.cancel(&found[0].id).await.unwrap().status,
            IntentStatus::Canceled
        );

        let since = a.created_ms;
        let page = p.list_created_since(since, None, 2).await.unwrap();
        assert_eq!(page.data.len(), 2);
        assert!(page.has_more);
        assert_eq!(page.data[0].id, a.id, "oldest first");
        let rest = p
            .list_created_since(since, Some(&page.data[1].id), 100)
            .await
            .unwrap();
        assert!(!rest.has_more);
        assert_eq!(page.data.len() + rest.data.len(), 3, "h1, h3 and h4");
        assert!(p
            .list_created_since(now_ms() + 60_000, None, 100)
            .await
            .unwrap()
            .data
            .is_empty());
        assert_eq!(p.retrieve(&a.id).await.unwrap(), full);
    }
}
