//! What every handler shares: the cluster client, the token key, the cache and the limiters.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ticketd_raft::client::ClusterClient;

use crate::cache::ReadCache;
use crate::keys::{KeyedHmac, Keys};
use crate::tokens::TokenKey;

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
    /// How long a new hold keeps its seats; none: the store's default (10 minutes).
    pub hold_ttl: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            holds_per_user_per_minute: 30,
            holds_per_ip_per_minute: 120,
            body_bytes_max: 64 * 1024,
            request_timeout: Duration::from_secs(20),
            hold_ttl: None,
        }
    }
}

/// Shared state of the HTTP layer. axum clones the state for every request, so it is one
/// `Arc` (one reference count per clone); the fields are reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    /// The cluster.
    pub cluster: Arc<ClusterClient>,
    /// Signs and checks bearer tokens.
    pub tokens: TokenKey,
    /// Ids of new objects and password salts (see [`crate::keys`]).
    pub ids: KeyedHmac,
    /// Nonces of sealed payment-method tokens.
    pub vault_nonces: KeyedHmac,
    /// Seeds of tickets' code secrets.
    pub code_secrets: KeyedHmac,
    /// Browse and seat-map responses.
    pub cache: ReadCache,
    /// The event and venue of each dt seen: a dt never moves to another event or venue, so
    /// what a hold checks before proposing is read once per dt, not once per hold. Bounded.
    pub dt_places: moka::future::Cache<String, Arc<DtPlace>>,
    /// The seats of each venue seen with a dt: a venue's seats are frozen once it has a dt
    /// (the store refuses a new layout), so the labels of held seats are read once per venue.
    /// Bounded by seats held in memory.
    pub seatings: moka::future::Cache<String, Arc<ticketd_store::types::SeatingMap>>,
    /// Hold creation per user.
    pub holds_by_user: Arc<DefaultKeyedRateLimiter<String>>,
    /// Hold creation per client address.
    pub holds_by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// The limits in force.
    pub limits: Limits,
    /// Seals saved payment-method tokens, when a vault key is configured.
    pub vault: Option<Arc<crate::crypto::TokenVault>>,
    /// The payment provider, when configured.
    pub payments: Option<Arc<ticketd_money::provider::HttpProvider>>,
    /// FAULT INJECTION for crash tests only: what the purchase saga does after a step.
    #[cfg(feature = "failpoints")]
    pub saga_fault: Option<ticketd_money::fault::SagaFault>,
}

/// Seats of all the venues whose seating the API keeps at once (about 100 bytes each).
pub const SEATINGS_SEATS_MAX: u64 = 2_000_000;

/// Where a dt is: its event and venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtPlace {
    /// Its event.
    pub event_id: String,
    /// Its venue.
    pub venue_id: String,
}

impl AppState {
    /// Assembles the state, with the keys derived from the root key (the vault is set apart,
    /// with [`Self::with_vault`]: only a root key that outlives the process may seal).
    pub fn new(cluster: ClusterClient, keys: &Keys, limits: Limits) -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        Self(Arc::new(Shared {
            cluster: Arc::new(cluster),
            tokens: keys.tokens.clone(),
            ids: keys.ids.clone(),
            vault_nonces: keys.vault_nonces.clone(),
            code_secrets: keys.code_secrets.clone(),
            cache: ReadCache::new(10_000),
            dt_places: moka::future::Cache::new(100_000),
            seatings: moka::future::Cache::builder()
                .weigher(|_, m: &Arc<ticketd_store::types::SeatingMap>| {
                    u32::try_from(m.seat_count()).unwrap_or(u32::MAX).max(1)
                })
                .max_capacity(SEATINGS_SEATS_MAX)
                .build(),
            holds_by_user: Arc::new(RateLimiter::keyed(per_minute(
                limits.holds_per_user_per_minute,
            ))),
            holds_by_ip: Arc::new(RateLimiter::keyed(per_minute(
                limits.holds_per_ip_per_minute,
            ))),
            limits,
            payments: None,
            vault: None,
            #[cfg(feature = "failpoints")]
            saga_fault: None,
        }))
    }

    /// The fields, to set them while the state is built (before it is shared).
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// FAULT INJECTION for crash tests: `fault` as `ticketd_money::fault::SagaFault::parse`
    /// reads it. A build without the `failpoints` feature has no fault hook and refuses.
    pub fn with_test_fault(mut self, fault: &str) -> Result<Self, String> {
        #[cfg(feature = "failpoints")]
        {
            let fault = ticketd_money::fault::SagaFault::parse(fault)?;
            tracing::warn!(?fault, "FAULT INJECTION enabled: for crash tests only");
            self.shared_mut().saga_fault = Some(fault);
            Ok(self)
        }
        #[cfg(not(feature = "failpoints"))]
        {
            let _ = &mut self;
            Err(format!(
                "fault {fault:?}: this build has no fault injection (the failpoints feature)"
            ))
        }
    }

    /// Seals saved payment methods with `vault`.
    pub fn with_vault(mut self, vault: crate::crypto::TokenVault) -> Self {
        self.shared_mut().vault = Some(Arc::new(vault));
        self
    }

    /// Uses `provider` for purchases.
    pub fn with_payments(mut self, provider: ticketd_money::provider::HttpProvider) -> Self {
        self.shared_mut().payments = Some(Arc::new(provider));
        self
    }
}
