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

/// Signs and checks short server-issued strings (the installation flow's state) with a key
/// derived from the JWT secret for this purpose only. `Debug` never shows the key.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(HMAC-SHA256, key redacted)")
    }
}

impl Signer {
    /// A key for `purpose`, derived from `secret`: one secret can sign several kinds of string
    /// without one kind ever verifying as another.
    pub fn derive(secret: &SecretString, purpose: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"lanyard/");
        h.update(purpose.as_bytes());
        h.update(b"/");
        h.update(secret.expose_secret().as_bytes());
        Self {
            key: h.finalize().into(),
        }
    }

    fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.key)
            .expect("HMAC takes any key length")
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(signature).is_ok()
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

    #[test]
    fn signatures_verify_only_for_their_message_and_purpose() {
        let secret = SecretString::from("s".repeat(40));
        let signer = Signer::derive(&secret, "install-state");
        let sig = signer.sign(b"team|host|nonce");
        assert!(signer.verify(b"team|host|nonce", &sig));
        assert!(!signer.verify(b"team|host|nonce2", &sig));
        assert!(!signer.verify(b"team|host|nonce", &sig[..31]));
        assert!(!Signer::derive(&secret, "other").verify(b"team|host|nonce", &sig));
        assert!(!format!("{signer:?}").contains('s'.to_string().repeat(5).as_str()));
    }
}
