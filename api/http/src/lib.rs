//! The public HTTP API of ticketd: a stateless axum layer over the cluster.
//!
//! Any number of copies can run beside the cluster: they keep no state of their own except a
//! cache of browse data. Writes go to the Raft leader through [`ticketd_raft::client`] with the
//! caller's `Idempotency-Key`; browse reads are served from any node (local reads, with the
//! applied index in `X-Applied-Index`) through a cache; holds, orders and tickets are read
//! linearizably.
//!
//! Architecture invariants: this crate links neither RocksDB nor openraft; it never caches a
//! seat decision; another user's object answers 404. Money (the provider's client and the
//! purchase saga) is `ticketd_money`'s; this crate turns its answers into HTTP.
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod auth;
pub mod cache;
pub mod crypto;
pub mod extract;
pub mod keys;
pub mod pages;
pub mod problem;
pub mod resources;
pub mod routes;
pub mod state;
pub mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use state::{AppState, Limits};

/// The OpenAPI document's top.
#[derive(OpenApi)]
#[openapi(
    info(title = "ticketd", description = "Browse events, hold seats, buy and scan tickets.", version = "1"),
    components(schemas(problem::Problem)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The problems any operation can answer, whatever the route: framework rejections (malformed
/// JSON or parameters, wrong content type, body too large), authentication, rate limits, an
/// unavailable cluster, timeouts. Added to every operation that does not describe them itself.
struct CommonProblems;

/// Statuses of [`CommonProblems`].
const COMMON_PROBLEM_STATUSES: [(&str, &str); 12] = [
    (
        "400",
        "malformed request: BAD_REQUEST, INVALID_ARGUMENT, IDEMPOTENCY_KEY_MISSING",
    ),
    ("401", "UNAUTHENTICATED: no valid bearer token"),
    ("403", "FORBIDDEN: the role does not allow it"),
    ("404", "NOT_FOUND (also another user's object)"),
    ("405", "METHOD_NOT_ALLOWED"),
    ("413", "PAYLOAD_TOO_LARGE"),
    ("415", "UNSUPPORTED_MEDIA_TYPE: JSON bodies only"),
    ("422", "a domain rejection or an invalid body; see the code"),
    ("429", "RATE_LIMITED: see Retry-After"),
    ("500", "INTERNAL"),
    (
        "503",
        "UNAVAILABLE or OUTCOME_UNKNOWN: retry with the same Idempotency-Key",
    ),
    ("504", "TIMEOUT"),
];

impl utoipa::Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                for (status, what) in COMMON_PROBLEM_STATUSES {
                    if op.responses.responses.contains_key(status) {
                        continue;
                    }
                    let content = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build();
                    let r = ResponseBuilder::new()
                        .description(what)
                        .content("application/problem+json", content)
                        .build();
                    op.responses.responses.insert(status.to_string(), r.into());
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router with every route, and the OpenAPI document generated from them.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut doc) = routes::router(ApiDoc::openapi()).split_for_parts();
    finish_doc(&mut doc);
    let spec = doc.clone();
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || std::future::ready(axum::Json(spec.clone()))),
        )
        // The web pages: outside the OpenAPI document.
        .merge(pages::router())
        .with_state(state.clone())
        .layer(middleware::from_fn(track_metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            state.limits.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(state.limits.body_bytes_max))
        .layer(middleware::from_fn(problems_for_rejections))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    (router, doc)
}

/// What the document gets once every route is in: OpenAPI 3.1 and the common problems.
fn finish_doc(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::Modify as _;
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    CommonProblems.modify(doc);
}

/// The OpenAPI document as pretty JSON, exactly as `/openapi.json` serves it.
pub fn openapi_json() -> anyhow::Result<String> {
    let mut doc = routes::router(ApiDoc::openapi()).into_openapi();
    finish_doc(&mut doc);
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// Most bytes of a framework rejection's text kept in the problem detail.
const REJECTION_DETAIL_BYTES_MAX: usize = 1024;

/// Turns every error response that is not already a problem (axum's rejections of malformed
/// JSON, paths or queries, a wrong content type, an unknown method, the body limit, the request
/// timeout) into `application/problem+json` with a code derived from its status.
async fn problems_for_rejections(req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, REJECTION_DETAIL_BYTES_MAX * 4).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let mut detail: String = text.chars().take(REJECTION_DETAIL_BYTES_MAX).collect();
    if detail.is_empty() {
        detail = status.canonical_reason().unwrap_or("error").to_string();
    }
    let mut out = problem::Problem::from_status(status, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The latency histogram and response counter of one (route, method, status).
type RouteHandles = (metrics::Histogram, metrics::Counter);

/// Handles already registered, by route, then by (method, status): registering costs label
/// allocations and a registry lookup, and this runs on every request. At most
/// [`ROUTE_METRICS_MAX`] combinations are kept (methods are client input); others are
/// registered each time.
static ROUTE_METRICS: std::sync::LazyLock<std::sync::RwLock<RouteMetrics>> =
    std::sync::LazyLock::new(Default::default);
type RouteMetrics = HashMap<String, HashMap<(axum::http::Method, u16), RouteHandles>>;
static ROUTE_METRICS_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const ROUTE_METRICS_MAX: usize = 1024;

fn route_handles(route: &str, method: &axum::http::Method, status: u16) -> RouteHandles {
    use std::sync::atomic::Ordering;
    let key = (method.clone(), status);
    if let Ok(m) = ROUTE_METRICS.read() {
        if let Some(h) = m.get(route).and_then(|r| r.get(&key)) {
            return h.clone();
        }
    }
    let h = (
        metrics::histogram!("ticketd_api_request_seconds", "route" => route.to_string(), "method" => method.to_string()),
        metrics::counter!("ticketd_api_responses_total", "route" => route.to_string(), "status" => status.to_string()),
    );
    if ROUTE_METRICS_LEN.load(Ordering::Relaxed) < ROUTE_METRICS_MAX {
        if let Ok(mut m) = ROUTE_METRICS.write() {
            let per_route = m.entry(route.to_string()).or_default();
            if per_route.insert(key, h.clone()).is_none() {
                ROUTE_METRICS_LEN.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    h
}

/// Per-route latency histogram and status counts.
async fn track_metrics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let (latency, responses) = route_handles(route, &method, resp.status().as_u16());
    latency.record(started.elapsed().as_secs_f64());
    responses.increment(1);
    resp
}

/// Connections that completed their handshake and wait to be accepted, at most (the kernel
/// caps it at `net.core.somaxconn`). An on-sale opens thousands of connections at once; with the
/// default of 128, a burst of 1,024 overflowed it and every dropped SYN cost its client a
/// second (the first SYN retransmit).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` for serving HTTP, with a [`LISTEN_BACKLOG`] accept queue.
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves the API on `listener` until `shutdown` resolves. Operational routes (`/metrics`) are
/// not here: they have their own listener (see `ticketd api --metrics-listen`), so the public
/// port shows the world nothing about the process.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = app(state);
    // Small answers go out at once, not after the client's delayed ACK (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "TCP_NODELAY on an accepted connection failed");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
