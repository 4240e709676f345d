//! Passwords (argon2id) and bearer tokens (HMAC-SHA256 signed, stateless, so any number of API
//! copies sharing the key accept each other's tokens).

use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::problem::Problem;
use crate::state::AppState;

/// Roles, from least to most privileged in no particular order: each route says which it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Buys tickets.
    User,
    /// Creates venues, events, dts, tiers and sale windows.
    Seller,
    /// Admits tickets at a venue.
    Scanner,
    /// Operates the platform.
    Admin,
}

/// The signed content of a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
    ttl_s: u64,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey(.., ttl_s: {})", self.ttl_s)
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenKey {
    /// A key of at least 32 bytes; tokens live `ttl_s` seconds.
    pub fn new(key: &[u8], ttl_s: u64) -> anyhow::Result<Self> {
        if key.len() < 32 {
            anyhow::bail!("the token key must be at least 32 bytes");
        }
        Ok(Self {
            key: key.to_vec(),
            ttl_s,
        })
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac
    }

    /// Issues a token for `sub` with `role`.
    pub fn issue(&self, sub: &str, role: Role) -> (String, u64) {
        let exp = now_s() + self.ttl_s;
        let claims = Claims {
            sub: sub.to_string(),
            role,
            exp,
        };
        let payload = B64.encode(serde_json::to_vec(&claims).expect("claims encode"));
        let sig = B64.encode(self.mac(&payload).finalize().into_bytes());
        (format!("{payload}.{sig}"), exp)
    }

    /// Checks a token's signature and expiry.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let (payload, sig) = token.split_once('.')?;
        let sig = B64.decode(sig).ok()?;
        self.mac(payload).verify_slice(&sig).ok()?;
        let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (claims.exp > now_s()).then_some(claims)
    }
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, Problem> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Problem::internal)
}

/// Hashes a password with argon2id and a salt derived from `salt_seed` (PHC string): a retried
/// sign-up proposes the very same hash, so its idempotency key answers the first outcome.
pub fn hash_password_seeded(password: &str, salt_seed: &[u8; 32]) -> Result<String, Problem> {
    let salt = SaltString::encode_b64(&salt_seed[..16]).map_err(Problem::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Problem::internal)
}

/// A cheap stand-in hash check for unknown emails, so a login answers in about the same time
/// whether or not the account exists.
pub fn burn_password_check(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        hash_password_seeded("not a password of anyone", &[7u8; 32]).unwrap_or_default()
    });
    let _ = verify_password(password, phc);
}

/// Checks a password against its PHC hash; a hash asking for more work than the store's
/// bounds allow (memory, passes, lanes) fails without being computed.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        within_cost(&h)
            && Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
    })
}

/// Whether a hash's argon2 parameters are within `ticketd_store::limits`.
fn within_cost(h: &PasswordHash<'_>) -> bool {
    use ticketd_store::limits::{
        PASSWORD_HASH_LANES_MAX, PASSWORD_HASH_MEMORY_KIB_MAX, PASSWORD_HASH_TIME_COST_MAX,
    };
    let at_most = |name: &str, max: u32| h.params.get_decimal(name).is_some_and(|v| v <= max);
    at_most("m", PASSWORD_HASH_MEMORY_KIB_MAX)
        && at_most("t", PASSWORD_HASH_TIME_COST_MAX)
        && at_most("p", PASSWORD_HASH_LANES_MAX)
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub user_id: String,
    /// Role.
    pub role: Role,
}

impl Caller {
    /// Refuses the request unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!("this needs the role {roles:?}")))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Caller::from_headers(&parts.headers, &state.tokens).ok_or_else(Problem::unauthenticated)
    }
}

impl Caller {
    /// The caller a valid `Authorization: Bearer` header names; `None` without one.
    pub fn from_headers(headers: &axum::http::HeaderMap, tokens: &TokenKey) -> Option<Self> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let claims = tokens.verify(header.strip_prefix("Bearer ")?.trim())?;
        Some(Caller {
            user_id: claims.sub,
            role: claims.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let k = TokenKey::new(&[7u8; 32], 60).unwrap();
        let (t, _) = k.issue("u1", Role::User);
        assert_eq!(k.verify(&t).unwrap().sub, "u1");
        let other = TokenKey::new(&[8u8; 32], 60).unwrap();
        assert!(other.verify(&t).is_none());
        let (payload, sig) = t.split_once('.').unwrap();
        let forged_claims = B64.encode(br#"{"sub":"u1","role":"admin","exp":99999999999}"#);
        assert!(k.verify(&format!("{forged_claims}.{sig}")).is_none());
        assert!(k.verify(payload).is_none());
        let expired = TokenKey::new(&[7u8; 32], 0).unwrap();
        let (t, _) = expired.issue("u1", Role::User);
        assert!(expired.verify(&t).is_none());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        // The same hash claiming 4 GiB of memory is refused before argon2 would allocate it.
        let greedy = h.replace("m=19456", "m=4194304");
        assert!(!verify_password("correct horse", &greedy));
    }
}
