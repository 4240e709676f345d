//! Bearer tokens: HMAC-SHA256 signed and stateless, so any number of API copies sharing the key
//! accept each other's tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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
        .map(|since| since.as_secs())
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
}
