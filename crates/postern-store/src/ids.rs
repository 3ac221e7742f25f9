//! The two small macros behind the store's typed values: UUID ids and enums stored as text.
//!
//! Purpose: give every aggregate its own id type (an `AccountId` cannot be passed where an `AppId`
//! is expected) and every state enum the same `as_str` / `FromStr` / serde spelling, written once.
//! Non-goal: validation beyond "is a UUID" and "is a known name"; business rules live with callers.
//! Key decision: ids are kept as their canonical hyphenated lower-case text, the form stored in the
//! database and shown in URLs, so comparing, binding and printing need no conversion. Enum names
//! are snake_case strings (not integers) so the database and the JSON API read the same.

/// Defines a UUID v7 id newtype: `generate`, `as_str`, `FromStr`, `Display`, serde as a string.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            pub fn generate() -> Self {
                $name(uuid::Uuid::now_v7().hyphenated().to_string())
            }

            /// The id as text, e.g. for a URL path.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            /// Accepts any UUID spelling and keeps the canonical one, so ids compare equal as
            /// strings.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let uuid = uuid::Uuid::parse_str(text)?;
                Ok($name(uuid.hyphenated().to_string()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = uuid::Error;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

/// Defines a fieldless enum stored as text: `as_str`, `FromStr`, `Display`, `ALL`, serde by name.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialized name, e.g. `"needs_reauth"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::UnknownVariant;

            /// Parses the name [`Self::as_str`] gives, exactly (case-sensitive).
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::UnknownVariant::new(stringify!($name), text)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use {text_enum, uuid_id};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    uuid_id! {
        /// An id for the tests.
        TestId
    }

    text_enum! {
        /// An enum for the tests.
        Colour {
            /// Red.
            Red => "red",
            /// Dark blue.
            DarkBlue => "dark_blue",
        }
    }

    #[test]
    fn ids_are_canonical_and_round_trip_through_text_and_json() {
        let id: TestId = "0190F3A1-8C2B-7D4E-9F00-0123456789AB".parse().unwrap();
        assert_eq!(id.as_str(), "0190f3a1-8c2b-7d4e-9f00-0123456789ab");
        assert_eq!(format!("{id:?}"), format!("TestId({id})"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<TestId>(&json).unwrap(), id);
        assert!("not-a-uuid".parse::<TestId>().is_err());
        assert_ne!(TestId::generate(), TestId::generate());
    }

    #[test]
    fn text_enums_round_trip_and_refuse_unknown_names() {
        for colour in Colour::ALL {
            assert_eq!(colour.as_str().parse::<Colour>().unwrap(), *colour);
            let json = serde_json::to_string(colour).unwrap();
            assert_eq!(json, format!("\"{}\"", colour.as_str()));
        }
        let err = "DarkBlue".parse::<Colour>().unwrap_err();
        assert_eq!(err.to_string(), "unknown Colour `DarkBlue`");
    }
}
