//! Bearer secrets that Lanyard issues (team API keys `lk_…`, runner tokens `lrt_…`).
//!
//! A secret is `<prefix><lookup><secret>`: the short `lookup` part finds the row through an index,
//! and only the SHA-256 of the whole string is stored. Verification compares hashes in constant
//! time, so neither the index nor the comparison leaks how much of a guess was right. The secrets
//! carry about 250 bits of entropy, so a fast hash is enough.

use rand::{distributions::Alphanumeric, Rng};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const LOOKUP_LEN: usize = 10;
const SECRET_LEN: usize = 32;

crate::string_enum! {
    /// What a bearer secret is for, named by its prefix.
    pub enum SecretKind {
        ApiKey = "lk_",
        RunnerToken = "lrt_",
    }
}

/// A freshly issued secret: the plaintext goes to the user once; `lookup` and `hash` are stored.
#[derive(Debug)]
pub struct BearerSecret {
    pub kind: SecretKind,
    pub plaintext: SecretString,
    pub lookup: String,
    pub hash: String,
}

/// A presented secret, split into what the store needs to check it. It borrows its lookup from
/// the presented string and keeps its hash on the stack: it is made on every request.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedSecret<'a> {
    pub kind: SecretKind,
    pub lookup: &'a str,
    /// Hex SHA-256 of the whole presented string. A hash, so safe to keep and debug-print.
    hash: [u8; 64],
}

impl std::fmt::Debug for PresentedSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedSecret")
            .field("kind", &self.kind)
            .field("lookup", &self.lookup)
            .field("hash", &self.hash())
            .finish()
    }
}

impl BearerSecret {
    pub fn generate(kind: SecretKind) -> Self {
        let mut rng = rand::thread_rng();
        let body: String = (&mut rng)
            .sample_iter(Alphanumeric)
            .take(LOOKUP_LEN + SECRET_LEN)
            .map(char::from)
            .collect();
        let full = format!("{}{body}", kind.as_str());
        let lookup = body[..LOOKUP_LEN].to_string();
        let hash = sha256_hex(&full);
        Self {
            kind,
            plaintext: SecretString::from(full),
            lookup,
            hash,
        }
    }

    /// Splits a presented bearer string; `None` if it cannot be a secret of any kind.
    pub fn parse(presented: &str) -> Option<PresentedSecret<'_>> {
        let kind = [SecretKind::RunnerToken, SecretKind::ApiKey]
            .into_iter()
            .find(|k| presented.starts_with(k.as_str()))?;
        let body = &presented[kind.as_str().len()..];
        if body.len() != LOOKUP_LEN + SECRET_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        Some(PresentedSecret {
            kind,
            lookup: &body[..LOOKUP_LEN],
            hash: sha256_hex_array(presented),
        })
    }

    pub fn expose(&self) -> &str {
        self.plaintext.expose_secret()
    }
}

impl PresentedSecret<'_> {
    /// Constant-time check against the stored hash, compared eight bytes at a time (a byte at
    /// a time cost as much as the rest of a cached request's authentication).
    pub fn matches(&self, stored_hash: &str) -> bool {
        let Ok(stored) = <&[u8; 64]>::try_from(stored_hash.as_bytes()) else {
            return false;
        };
        words(&self.hash).ct_eq(&words(stored)).into()
    }

    /// Hex SHA-256 of the whole presented string.
    pub fn hash(&self) -> &str {
        std::str::from_utf8(&self.hash).expect("hex digits are ASCII")
    }
}

fn words(hex: &[u8; 64]) -> [u64; 8] {
    std::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&hex[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(word)
    })
}

/// Into a stack buffer: `hex::encode` collects chars one by one, a cost on every request.
fn sha256_hex_array(s: &str) -> [u8; 64] {
    let mut out = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(s.as_bytes()), &mut out)
        .expect("32 bytes are 64 hex digits");
    out
}

pub fn sha256_hex(s: &str) -> String {
    String::from_utf8(sha256_hex_array(s).to_vec()).expect("hex digits are ASCII")
}

/// Constant-time equality for secrets of any kind (e.g. a shared header token).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_secrets_verify_and_tampered_ones_do_not() {
        for kind in [SecretKind::ApiKey, SecretKind::RunnerToken] {
            let issued = BearerSecret::generate(kind);
            assert!(issued.expose().starts_with(kind.as_str()));
            let presented = BearerSecret::parse(issued.expose()).unwrap();
            assert_eq!(presented.kind, kind);
            assert_eq!(presented.lookup, issued.lookup);
            assert!(presented.matches(&issued.hash));

            let mut tampered = issued.expose().to_string();
            let last = tampered.pop().unwrap();
            tampered.push(if last == 'a' { 'b' } else { 'a' });
            let presented = BearerSecret::parse(&tampered).unwrap();
            assert_eq!(presented.lookup, issued.lookup, "same row is found");
            assert!(!presented.matches(&issued.hash), "but the hash differs");
        }
    }

    #[test]
    fn a_stored_hash_matches_only_when_every_digit_is_equal() {
        let issued = BearerSecret::generate(SecretKind::RunnerToken);
        let presented = BearerSecret::parse(issued.expose()).unwrap();
        assert_eq!(presented.hash(), issued.hash);
        for at in 0..issued.hash.len() {
            let mut other = issued.hash.clone().into_bytes();
            other[at] = if other[at] == b'0' { b'1' } else { b'0' };
            let other = String::from_utf8(other).unwrap();
            assert!(
                !presented.matches(&other),
                "a change at {at} went unnoticed"
            );
        }
        for wrong_length in [&issued.hash[..63], "", &format!("{}0", issued.hash)] {
            assert!(!presented.matches(wrong_length));
        }
    }

    #[test]
    fn debug_never_shows_the_plaintext() {
        let issued = BearerSecret::generate(SecretKind::ApiKey);
        let debug = format!("{issued:?}");
        assert!(!debug.contains(issued.expose()), "{debug}");
        let secret_part = &issued.expose()[3 + LOOKUP_LEN..];
        assert!(!debug.contains(secret_part));
        let presented = format!("{:?}", BearerSecret::parse(issued.expose()).unwrap());
        assert!(!presented.contains(secret_part), "{presented}");
        assert!(presented.contains(&issued.hash), "{presented}");
    }

    #[test]
    fn rejects_strings_that_are_not_secrets() {
        // A GitHub installation token is not a Lanyard secret (built at run time, not a literal).
        let github_token = format!("ghs_{}", "a".repeat(36));
        for bad in ["", "lk_", "lk_short", "Bearer lk_x", &github_token] {
            assert!(BearerSecret::parse(bad).is_none(), "{bad}");
        }
        let ok = BearerSecret::generate(SecretKind::ApiKey);
        let with_symbol = format!("{}!", &ok.expose()[..ok.expose().len() - 1]);
        assert!(BearerSecret::parse(&with_symbol).is_none());
    }
}
