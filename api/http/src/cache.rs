//! A TinyLFU cache (moka) of browse data and seat maps, with ETags.
//!
//! Only reads that tolerate bounded staleness go through it; holds, orders, tickets and every
//! seat decision are read linearizably from the cluster and never cached.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One cached response body.
#[derive(Debug, Clone)]
pub struct Cached {
    /// JSON body.
    pub body: Arc<Vec<u8>>,
    /// Strong ETag of the body.
    pub etag: String,
    /// Applied index of the node that answered.
    pub applied_index: u64,
    /// Seconds a CDN or browser may keep it.
    pub max_age_s: u64,
}

impl Cached {
    /// Wraps a body, computing its ETag.
    pub fn new(body: Vec<u8>, applied_index: u64, max_age_s: u64) -> Self {
        let digest = Sha256::digest(&body);
        let etag = format!(
            "\"{}\"",
            digest
                .iter()
                .take(12)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Self {
            body: Arc::new(body),
            etag,
            applied_index,
            max_age_s,
        }
    }

    /// 304 when `If-None-Match` names this body, else 200 with it; with ETag, Cache-Control and
    /// the applied index the data reflects.
    pub fn respond(&self, request_headers: &HeaderMap) -> Response {
        let not_modified = request_headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim() == self.etag || t.trim() == "*")
            });
        let mut resp = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(header::CONTENT_TYPE, "application/json")],
                self.body.as_ref().clone(),
            )
                .into_response()
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "public, max-age={}, stale-while-revalidate=5",
            self.max_age_s
        )) {
            h.insert(header::CACHE_CONTROL, v);
        }
        h.insert("x-applied-index", HeaderValue::from(self.applied_index));
        resp
    }
}

/// The cache.
#[derive(Clone)]
pub struct ReadCache {
    inner: moka::future::Cache<String, Cached>,
}

impl ReadCache {
    /// A cache of at most `capacity` responses, each kept at most 1 s: a seat map a user sees is
    /// at most that much older than the store (with hold expiry every 500 ms, an expired hold's
    /// seats show free within 1.5 s of its expiry).
    pub fn new(capacity: u64) -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(1))
                .build(),
        }
    }

    /// The cached response for `key`, counting hits and misses.
    pub async fn get(&self, key: &str) -> Option<Cached> {
        let hit = self.inner.get(key).await;
        let outcome = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!("ticketd_api_cache_lookups_total", "outcome" => outcome).increment(1);
        hit
    }

    /// Stores a response.
    pub async fn put(&self, key: String, value: Cached) {
        self.inner.insert(key, value).await;
    }
}
