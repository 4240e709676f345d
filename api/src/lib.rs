//! The public HTTP API of ticketd: a stateless axum layer over the cluster.
//!
//! Any number of copies can run beside the cluster: they keep no state of their own except a
//! cache of browse data. Writes go to the Raft leader through [`ticketd_raft::client`] with the
//! caller's `Idempotency-Key`; browse reads are served from any node (local reads, with the
//! applied index in `X-Applied-Index`) through a cache; holds, orders and tickets are read
//! linearizably.
//!
//! Architecture invariants: this crate links neither RocksDB nor openraft; it never caches a
//! seat decision; another user's object answers 404.

pub mod auth;
pub mod cache;
pub mod crypto;
pub mod extract;
pub mod notify;
pub mod payments;
pub mod problem;
pub mod routes;
pub mod state;
pub mod tickets;

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
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    let spec = doc.clone();
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || std::future::ready(axum::Json(spec.clone()))),
        )
        .with_state(state.clone())
        .layer(middleware::from_fn(track_metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            state.limits.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(state.limits.body_bytes_max))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    (router, doc)
}

/// The OpenAPI document as pretty JSON, exactly as `/openapi.json` serves it.
pub fn openapi_json() -> anyhow::Result<String> {
    let mut doc = routes::router(ApiDoc::openapi()).into_openapi();
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// Per-route latency histogram and status counts.
async fn track_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("ticketd_api_request_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("ticketd_api_responses_total", "route" => route, "status" => status)
        .increment(1);
    resp
}

/// Serves the API, plus `extra` routes (such as `/metrics`), on `listener` until `shutdown`
/// resolves.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = app(state);
    let router = router.merge(extra);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
