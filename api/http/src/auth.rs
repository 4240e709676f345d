//! Passwords (argon2id), and the [`Caller`] a request's bearer token names (the tokens
//! themselves: `tokens.rs`).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::problem::Problem;
use crate::state::AppState;
pub use crate::tokens::Role;
use crate::tokens::TokenKey;

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
