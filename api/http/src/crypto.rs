//! The payment-method token encrypted at rest: AES-256-GCM with a random 96-bit nonce, the key
//! from configuration. The store only ever sees the sealed bytes; the token is never logged.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};

/// Version byte of the sealed format: `1 || nonce (12) || ciphertext+tag`.
const SEALED_V1: u8 = 1;

/// Seals and opens payment-method tokens.
#[derive(Clone)]
pub struct TokenVault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVault(..)")
    }
}

impl TokenVault {
    /// A vault with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Encrypts `token`, binding it to `context` (the user id) so sealed bytes cannot be moved
    /// to another user.
    pub fn seal(&self, token: &str, context: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = aes_gcm::aead::Payload {
            msg: token.as_bytes(),
            aad: context.as_bytes(),
        };
        let ct = self
            .cipher
            .encrypt(&nonce, payload)
            .expect("AES-GCM encryption does not fail");
        let mut out = Vec::with_capacity(1 + nonce.len() + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Like [`Self::seal`], with the nonce taken from `nonce_seed` instead of drawn: the caller
    /// derives it (under its own secret key) from the token itself and the context, so the same
    /// token sealed again gives the same bytes (a retried request proposes the same command) and
    /// two different tokens never share a nonce.
    pub fn seal_with_nonce(&self, token: &str, context: &str, nonce_seed: &[u8; 32]) -> Vec<u8> {
        let nonce = Nonce::from_slice(&nonce_seed[..12]);
        let payload = aes_gcm::aead::Payload {
            msg: token.as_bytes(),
            aad: context.as_bytes(),
        };
        let ct = self
            .cipher
            .encrypt(nonce, payload)
            .expect("AES-GCM encryption does not fail");
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts sealed bytes; `None` if they were tampered with or sealed for another context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Option<String> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = rest.split_at(12);
        let payload = aes_gcm::aead::Payload {
            msg: ct,
            aad: context.as_bytes(),
        };
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .ok()?;
        String::from_utf8(pt).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_only_with_the_key_and_their_user() {
        let v = TokenVault::new(&[9u8; 32]);
        let sealed = v.seal("pm_card_visa", "user-1");
        assert!(
            !sealed.windows(12).any(|w| w == b"pm_card_visa"),
            "no plaintext at rest"
        );
        assert_eq!(v.open(&sealed, "user-1").as_deref(), Some("pm_card_visa"));
        assert_eq!(v.open(&sealed, "user-2"), None);
        assert_eq!(TokenVault::new(&[8u8; 32]).open(&sealed, "user-1"), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(v.open(&tampered, "user-1"), None);
        assert_ne!(
            v.seal("pm_card_visa", "user-1"),
            sealed,
            "fresh nonce each time"
        );
    }
}
