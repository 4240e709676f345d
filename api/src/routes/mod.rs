//! The routes under `/v1`.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub mod health;

/// Every route, with its OpenAPI description.
pub fn router(doc: utoipa::openapi::OpenApi) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc).routes(routes!(health::healthz))
}
