//! The web pages for buyers, sellers and scanners, served by `ticketd api` itself at `/` and
//! `/app/...`: one HTML shell, a stylesheet and a script, all embedded in the binary (no CDN, no
//! build step). The script is a small client-side router over the public `/v1` JSON API; the
//! bearer token lives in the tab's `sessionStorage`. These routes are not part of the OpenAPI
//! document.
//!
//! Client-side paths (every one serves the same shell):
//! - `/`: popular events near the visitor (geolocation or a city) and search;
//! - `/app/events/{event}`: an event and its dts;
//! - `/app/events/{event}/dts/{dt}`: the SVG seat map, seat selection and best available;
//! - `/app/holds/{event}/{dt}/{hold}`: a hold with its countdown;
//! - `/app/checkout/{event}/{dt}/{hold}`: the card form;
//! - `/app/orders/{order}`: confirmation, the order's tickets, cancel;
//! - `/app/tickets`, `/app/tickets/{ticket}`: my tickets, one ticket's rotating QR;
//! - `/app/scan`: the scanner; `/app/seller`: venues, events, dts, sale windows, sales;
//! - `/app/login`, `/app/signup`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");
const ICON_SVG: &str = include_str!("icon.svg");

/// What the pages may load: only this origin (the QR codes and the seat map are inline SVG).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages' routes, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(shell))
        .route("/app", get(shell))
        .route("/app/", get(shell))
        .route("/app/assets/app.js", get(script))
        .route("/app/assets/app.css", get(style))
        .route("/app/assets/icon.svg", get(icon))
        .route("/app/{*path}", get(shell))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn shell() -> Response {
    let mut r = asset("text/html; charset=utf-8", INDEX_HTML);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON_SVG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_loads_only_embedded_assets() {
        assert!(INDEX_HTML.contains("/app/assets/app.js"));
        assert!(INDEX_HTML.contains("/app/assets/app.css"));
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("://"), "every asset comes from this origin");
        }
    }
}
