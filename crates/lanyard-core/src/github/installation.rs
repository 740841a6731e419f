//! A GitHub App installation's id, one type from GitHub's JSON to the database: parsed once,
//! never converted with a default.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a number is not an installation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("installation id {0} is out of range (1 to 9223372036854775807)")]
pub struct InstallationIdError(pub i128);

/// A positive installation id, as GitHub numbers them. The database keeps it as a signed 64-bit
/// integer, which holds every id GitHub has issued or will for a long while; anything outside
/// `1..=i64::MAX` is refused where it enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct InstallationId(i64);

impl InstallationId {
    pub fn get(self) -> i64 {
        self.0
    }

    /// As GitHub's API paths print it.
    pub fn as_u64(self) -> u64 {
        self.0.unsigned_abs()
    }
}

impl TryFrom<i64> for InstallationId {
    type Error = InstallationIdError;

    fn try_from(n: i64) -> Result<Self, InstallationIdError> {
        if n > 0 {
            Ok(Self(n))
        } else {
            Err(InstallationIdError(n.into()))
        }
    }
}

impl TryFrom<u64> for InstallationId {
    type Error = InstallationIdError;

    fn try_from(n: u64) -> Result<Self, InstallationIdError> {
        let signed = i64::try_from(n).map_err(|_| InstallationIdError(n.into()))?;
        Self::try_from(signed)
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for InstallationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Self::try_from(n).map_err(serde::de::Error::custom)
    }
}

/// Stored as the `BIGINT` it is, on either backend; a stored value out of range fails to decode.
#[cfg(feature = "sqlx")]
mod sql {
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::{Database, Decode, Encode, Type};

    use super::InstallationId;

    impl<DB: Database> Type<DB> for InstallationId
    where
        i64: Type<DB>,
    {
        fn type_info() -> DB::TypeInfo {
            <i64 as Type<DB>>::type_info()
        }

        fn compatible(ty: &DB::TypeInfo) -> bool {
            <i64 as Type<DB>>::compatible(ty)
        }
    }

    impl<'q, DB: Database> Encode<'q, DB> for InstallationId
    where
        i64: Encode<'q, DB>,
    {
        fn encode_by_ref(
            &self,
            buf: &mut <DB as Database>::ArgumentBuffer<'q>,
        ) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<'q, DB>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r, DB: Database> Decode<'r, DB> for InstallationId
    where
        i64: Decode<'r, DB>,
    {
        fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
            let n = <i64 as Decode<'r, DB>>::decode(value)?;
            Ok(InstallationId::try_from(n)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_ids_that_fit_the_database_are_taken() {
        assert_eq!(InstallationId::try_from(42_u64).unwrap().get(), 42);
        assert_eq!(
            InstallationId::try_from(i64::MAX).unwrap().as_u64(),
            i64::MAX as u64
        );
        assert!(InstallationId::try_from(0_i64).is_err());
        assert!(InstallationId::try_from(-5_i64).is_err());
        let e = InstallationId::try_from(u64::MAX).unwrap_err();
        assert_eq!(
            e.to_string(),
            "installation id 18446744073709551615 is out of range (1 to 9223372036854775807)"
        );
        let parsed: InstallationId = serde_json::from_str("78").unwrap();
        assert_eq!(
            (parsed.to_string(), serde_json::to_string(&parsed).unwrap()),
            ("78".into(), "78".into())
        );
        for bad in ["0", "-1", "18446744073709551616", "1.5", "\"78\""] {
            assert!(
                serde_json::from_str::<InstallationId>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
