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

/// A presented secret, split into what the store needs to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedSecret {
    pub kind: SecretKind,
    pub lookup: String,
    /// Hex SHA-256 of the whole presented string. A hash, so safe to keep and debug-print.
    pub hash: String,
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
    pub fn parse(presented: &str) -> Option<PresentedSecret> {
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
            lookup: body[..LOOKUP_LEN].to_string(),
            hash: sha256_hex(presented),
        })
    }

    pub fn expose(&self) -> &str {
        self.plaintext.expose_secret()
    }
}

impl PresentedSecret {
    /// Constant-time check against the stored hash.
    pub fn matches(&self, stored_hash: &str) -> bool {
        self.hash.as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

pub fn sha256_hex(s: &str) -> String {
    // Into a stack buffer: `hex::encode` collects chars one by one, a cost on every request.
    let mut out = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(s.as_bytes()), &mut out)
        .expect("32 bytes are 64 hex digits");
    String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
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
    fn debug_never_shows_the_plaintext() {
        let issued = BearerSecret::generate(SecretKind::ApiKey);
        let debug = format!("{issued:?}");
        assert!(!debug.contains(issued.expose()), "{debug}");
        let secret_part = &issued.expose()[3 + LOOKUP_LEN..];
        assert!(!debug.contains(secret_part));
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
