//! The API's keys: one root key (32 bytes, `--root-key`), and one subkey per purpose derived
//! from it with HKDF-SHA256 (RFC 5869), so no key serves two purposes and a subkey seen in one
//! place tells nothing about the others or the root:
//!
//! | purpose | what it keys |
//! | --- | --- |
//! | `tokens` | bearer tokens' HMAC signatures |
//! | `ids` | ids of new objects and password salts, from the caller and the `Idempotency-Key` |
//! | `vault` | the AES-256-GCM key sealing saved payment-method tokens |
//! | `vault-nonces` | the nonces those seals take (the same token sealed again, the same bytes) |
//! | `code-secrets` | the seeds of tickets' rotating-code secrets |
//!
//! Every API copy of a deployment is given the same root key, so each derives the same
//! subkeys: their tokens, ids and seals agree.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::TokenVault;
use crate::tokens::TokenKey;

/// Bytes of a root key.
pub const ROOT_KEY_BYTES: usize = 32;

/// The HKDF salt: fixed, naming the scheme and its version (RFC 5869 3.1: a salt is optional;
/// one that names the application keeps its subkeys apart from any other use of the root).
const HKDF_SALT: &[u8] = b"ticketd api keys v1";

/// Derives the 32-byte subkey of `purpose` from `root`.
fn subkey(root: &[u8; ROOT_KEY_BYTES], purpose: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(HKDF_SALT), root)
        .expand(format!("ticketd/{purpose}").as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

/// Values derived from their parts under one subkey: unguessable without it, yet the same for
/// the same parts, so a retried request mints the same ids and secrets.
#[derive(Clone)]
pub struct KeyedHmac {
    key: [u8; 32],
}

impl std::fmt::Debug for KeyedHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHmac(..)")
    }
}

impl KeyedHmac {
    /// 32 bytes from `parts` (each length-prefixed, so no two lists of parts collide).
    pub fn bytes(&self, parts: &[&str]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// [`Self::bytes`] as 32 hex digits (128 bits), for ids.
    pub fn hex(&self, parts: &[&str]) -> String {
        self.bytes(parts)[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Every key the API uses, derived from one root key.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Signs and checks bearer tokens.
    pub tokens: TokenKey,
    /// Ids of new objects and password salts.
    pub ids: KeyedHmac,
    /// Seals saved payment-method tokens.
    pub vault: TokenVault,
    /// The vault's nonces.
    pub vault_nonces: KeyedHmac,
    /// Seeds of tickets' code secrets.
    pub code_secrets: KeyedHmac,
}

impl Keys {
    /// The keys of `root`; tokens live `token_ttl_s` seconds.
    pub fn derive(root: &[u8; ROOT_KEY_BYTES], token_ttl_s: u64) -> Self {
        Self {
            tokens: TokenKey::new(&subkey(root, "tokens"), token_ttl_s)
                .expect("a 32-byte subkey is long enough"),
            ids: KeyedHmac {
                key: subkey(root, "ids"),
            },
            vault: TokenVault::new(&subkey(root, "vault")),
            vault_nonces: KeyedHmac {
                key: subkey(root, "vault-nonces"),
            },
            code_secrets: KeyedHmac {
                key: subkey(root, "code-secrets"),
            },
        }
    }

    /// Parses a root key: 64 hex digits.
    pub fn parse_root(hex: &str) -> anyhow::Result<[u8; ROOT_KEY_BYTES]> {
        let hex = hex.trim();
        anyhow::ensure!(
            hex.len() == 2 * ROOT_KEY_BYTES && hex.is_ascii(),
            "a root key is {} hex digits, got {} characters",
            2 * ROOT_KEY_BYTES,
            hex.len()
        );
        let mut key = [0u8; ROOT_KEY_BYTES];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::{subkey, Keys};

    /// RFC 5869's test case 1 (HKDF-SHA256), through the same crate: the derivation is the
    /// standard one, not a look-alike.
    #[test]
    fn hkdf_is_rfc_5869() {
        let ikm = [0x0b_u8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn each_purpose_has_its_own_key_and_each_root_its_own_keys() {
        let root = [1u8; 32];
        let purposes = ["tokens", "ids", "vault", "vault-nonces", "code-secrets"];
        let keys: Vec<[u8; 32]> = purposes.iter().map(|p| subkey(&root, p)).collect();
        for (i, a) in keys.iter().enumerate() {
            assert_ne!(a, &root);
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(subkey(&[2u8; 32], "ids"), keys[1]);
        assert_eq!(subkey(&root, "ids"), keys[1], "deterministic");
        let (a, b) = (Keys::derive(&root, 60), Keys::derive(&root, 60));
        assert_eq!(a.ids.hex(&["user", "x"]), b.ids.hex(&["user", "x"]));
        assert_ne!(
            a.ids.hex(&["user", "x"]),
            a.code_secrets.hex(&["user", "x"])
        );
        assert_ne!(a.ids.hex(&["ab", "c"]), a.ids.hex(&["a", "bc"]));
    }

    #[test]
    fn a_root_key_is_64_hex_digits() {
        assert_eq!(Keys::parse_root(&"0f".repeat(32)).unwrap(), [0x0f; 32]);
        assert!(Keys::parse_root(&"0f".repeat(31)).is_err());
        assert!(Keys::parse_root(&"zz".repeat(32)).is_err());
        assert!(Keys::parse_root(&"é".repeat(32)).is_err());
    }
}
