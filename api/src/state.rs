//! What every handler shares: the cluster client, the token key, the cache and the limiters.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ticketd_raft::client::ClusterClient;

use crate::auth::TokenKey;
use crate::cache::ReadCache;

/// Limits of the API, all with units in their names.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Holds a user may create per minute.
    pub holds_per_user_per_minute: u32,
    /// Holds one IP address may create per minute.
    pub holds_per_ip_per_minute: u32,
    /// Largest request body accepted.
    pub body_bytes_max: usize,
    /// Longest a request may take before it is answered with a timeout.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            holds_per_user_per_minute: 30,
            holds_per_ip_per_minute: 120,
            body_bytes_max: 64 * 1024,
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// Shared state of the HTTP layer; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The cluster.
    pub cluster: Arc<ClusterClient>,
    /// Signs and checks bearer tokens.
    pub tokens: TokenKey,
    /// Browse and seat-map responses.
    pub cache: ReadCache,
    /// Hold creation per user.
    pub holds_by_user: Arc<DefaultKeyedRateLimiter<String>>,
    /// Hold creation per client address.
    pub holds_by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// The limits in force.
    pub limits: Limits,
    /// The payment provider, when configured.
    pub payments: Option<Arc<crate::payments::HttpProvider>>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(cluster: ClusterClient, tokens: TokenKey, limits: Limits) -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        Self {
            cluster: Arc::new(cluster),
            tokens,
            cache: ReadCache::new(10_000),
            holds_by_user: Arc::new(RateLimiter::keyed(per_minute(
                limits.holds_per_user_per_minute,
            ))),
            holds_by_ip: Arc::new(RateLimiter::keyed(per_minute(
                limits.holds_per_ip_per_minute,
            ))),
            limits,
            payments: None,
        }
    }

    /// Uses `provider` for purchases.
    pub fn with_payments(mut self, provider: crate::payments::HttpProvider) -> Self {
        self.payments = Some(Arc::new(provider));
        self
    }
}
