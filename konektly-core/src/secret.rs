//! Secrets: access and refresh tokens, client secrets. Their `Debug` and `Display` never show the
//! value; only [`ExposeSecret::expose_secret`] does, at the one place a request is built.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The value, for building a request. Never log it.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl ExposeSecret<str> for $name {
            fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}([REDACTED])", stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[REDACTED]")
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Not constant time: equality is for tests and change detection, not for checking
                // credentials.
                self.expose() == other.expose()
            }
        }

        /// Serializes the value itself: storage needs it (`konektly-store` encrypts it before it
        /// reaches a database). Never serialize a secret into a log.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.expose())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

secret_type!(
    /// An OAuth access token.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token.
    RefreshToken
);
secret_type!(
    /// An application's OAuth client secret.
    ClientSecret
);
secret_type!(
    /// A PKCE code verifier: secret until the code exchange.
    PkceVerifier
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let t = AccessToken::new("very-secret-token");
        assert!(!format!("{t:?}").contains("very-secret"));
        assert!(!format!("{t}").contains("very-secret"));
        assert_eq!(t.expose(), "very-secret-token");
    }
}
