//! `string_enum!` declares a registry enum together with its `ALL` list and wire names, so the
//! list can never miss a variant and tests that iterate `ALL` cover every new entry for free.

/// What every `string_enum!` registry offers, so generic code (metric labels, tests that walk a
/// registry) can take any of them.
pub trait Registry: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static {
    /// Every entry, in declaration order.
    fn all() -> &'static [Self];
    /// The entry's wire name.
    fn name(self) -> &'static str;
}

/// A stored or sent name that is not in the registry it should belong to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {registry}")]
pub struct UnknownName {
    pub registry: &'static str,
    pub value: String,
}

/// Declares `enum Name { Variant = "wire_name", ... }` with `ALL`, `as_str`, `Display`, serde in
/// the wire names, and a `parse` that returns `None` for unknown names.
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every entry, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The name on the wire, in the database and in logs.
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $wire ),+ }
            }

            /// The entry with this wire name, if any.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $wire => Some($name::$variant), )+ _ => None }
            }
        }

        impl $crate::registry::Registry for $name {
            fn all() -> &'static [Self] {
                Self::ALL
            }

            fn name(self) -> &'static str {
                self.as_str()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::registry::UnknownName;

            fn try_from(raw: String) -> Result<Self, $crate::registry::UnknownName> {
                Self::parse(&raw).ok_or_else(|| $crate::registry::UnknownName {
                    registry: stringify!($name),
                    value: raw.chars().take(64).collect(),
                })
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <::std::borrow::Cow<'de, str> as $crate::__serde::Deserialize>::deserialize(d)?;
                Self::parse(&raw).ok_or_else(|| {
                    $crate::__serde::de::Error::unknown_variant(&raw, &[$($wire),+])
                })
            }
        }
    };
}
