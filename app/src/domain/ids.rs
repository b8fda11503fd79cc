//! Ids that could be mixed up where they sit side by side (a connection and an application, a
//! connection and an account). Transparent on the wire and in the database: the same integer.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A row of `connections`.
    ConnectionId
);
id_type!(
    /// A row of `applications`.
    ApplicationId
);
id_type!(
    /// A row of `authorized_accounts`.
    AccountId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_integers_on_the_wire() {
        assert_eq!(serde_json::from_str::<ConnectionId>("5").unwrap(), ConnectionId(5));
        assert_eq!(serde_json::to_string(&ApplicationId(7)).unwrap(), "7");
        assert_eq!(AccountId(3).to_string(), "3");
    }
}
