//! Secrets at rest: AES-256-GCM under `LANYARD_ENCRYPTION_KEY`, with a random nonce per value and
//! associated data that binds each ciphertext to its row, so a ciphertext copied to another row
//! does not open.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(AES-256-GCM, key redacted)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored secret cannot be decrypted (wrong LANYARD_ENCRYPTION_KEY or corrupt row)")]
pub struct OpenError;

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// `nonce || ciphertext+tag`.
    pub fn seal(&self, plaintext: &SecretString, aad: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.expose_secret().as_bytes(),
            aad: aad.as_bytes(),
        };
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<SecretString, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| OpenError)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_to_its_context() {
        let s = Sealer::new(&[7; 32]);
        let secret = SecretString::from("ghp_example_pat_value");
        let sealed = s.seal(&secret, "pat:row-1");
        assert!(
            !sealed.windows(7).any(|w| w == b"ghp_exa"),
            "ciphertext hides the plaintext"
        );
        assert_eq!(
            s.open(&sealed, "pat:row-1").unwrap().expose_secret(),
            "ghp_example_pat_value"
        );
        assert_eq!(
            s.open(&sealed, "pat:row-2").unwrap_err(),
            OpenError,
            "wrong row"
        );
        assert!(
            Sealer::new(&[8; 32]).open(&sealed, "pat:row-1").is_err(),
            "wrong key"
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(s.open(&flipped, "pat:row-1").is_err(), "tampered");
        assert_ne!(
            s.seal(&secret, "pat:row-1"),
            sealed,
            "fresh nonce each time"
        );
        assert!(!format!("{s:?}").contains('7'));
    }
}
