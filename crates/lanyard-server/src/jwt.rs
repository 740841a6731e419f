//! Session JWTs: HS256 only, audience-checked, expiry judged by the injected clock.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims of a Lanyard session JWT (CONTRACT §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub uid: Uuid,
    pub tid: Uuid,
    pub email: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub aud: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed or signed with another key or algorithm")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued in the future")]
    NotYetValid,
}

/// Signing and verification keys. `Debug` shows neither.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    audience: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Tolerated clock skew for `iat`.
const IAT_SKEW_SECONDS: i64 = 60;

impl JwtKeys {
    pub fn new(secret: &SecretString, audience: &str) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            audience: audience.to_string(),
        }
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs a session JWT for a user, valid for `ttl` from `now`.
    pub fn issue(
        &self,
        user_id: Uuid,
        team_id: Uuid,
        email: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> (String, Claims) {
        let claims = Claims {
            uid: user_id,
            tid: team_id,
            email: email.to_string(),
            jti: Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail");
        (token, claims)
    }

    /// Verifies signature, algorithm and audience, then expiry against `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, JwtError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        // Expiry is judged below with the injected clock, not the library's wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| JwtError::Invalid)?;
        let claims = data.claims;
        let now = now.timestamp();
        if now >= claims.exp {
            return Err(JwtError::Expired);
        }
        if claims.iat > now + IAT_SKEW_SECONDS {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&SecretString::from("k".repeat(32)), "http://127.0.0.1:8080")
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let k = keys();
        let now = Utc::now();
        let (token, claims) = k.issue(
            Uuid::new_v4(),
            Uuid::new_v4(),
            "a@b.test",
            now,
            chrono::Duration::hours(1),
        );
        assert_eq!(k.verify(&token, now).unwrap(), claims);
        assert_eq!(
            k.verify(&token, now + chrono::Duration::minutes(59))
                .unwrap(),
            claims
        );
        assert_eq!(
            k.verify(&token, now + chrono::Duration::hours(1)),
            Err(JwtError::Expired)
        );
        assert_eq!(
            k.verify(&token, now - chrono::Duration::hours(1)),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn wrong_key_or_audience_is_invalid() {
        let now = Utc::now();
        let (token, _) = keys().issue(
            Uuid::new_v4(),
            Uuid::new_v4(),
            "a@b.test",
            now,
            chrono::Duration::hours(1),
        );
        let other_key = JwtKeys::new(&SecretString::from("z".repeat(32)), "http://127.0.0.1:8080");
        assert_eq!(other_key.verify(&token, now), Err(JwtError::Invalid));
        let other_aud = JwtKeys::new(&SecretString::from("k".repeat(32)), "https://elsewhere");
        assert_eq!(other_aud.verify(&token, now), Err(JwtError::Invalid));
    }

    #[test]
    fn debug_hides_the_key() {
        let debug = format!("{:?}", keys());
        assert!(!debug.contains("kkkk"), "{debug}");
    }
}
