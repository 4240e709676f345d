//! Liveness of the API process.

/// Answers `ok` while the process serves.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "serving", body = String, example = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}
