//! Salesforce record ids, one type per object, so that a Contact's id
//! cannot be written where a User's belongs. They hold the id as Salesforce
//! gave it (15 or 18 characters); the worker never makes one up.

macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

record_id!(
    /// A Case's id (`500…`).
    CaseId
);
record_id!(
    /// A Contact's id (`003…`).
    ContactId
);
record_id!(
    /// A User's id (`005…`): an owner or a comment's author.
    UserId
);
