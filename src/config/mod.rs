//! Environment variables and secret values turned into typed settings.
//!
//! The contract is `docs/configuration.md`: secrets are JSON documents in Secrets
//! Manager, the functions only get their ids. Parsing is strict on purpose: an
//! unknown key is an error naming it, because a typo such as
//! `set_audit_field` must not silently switch a feature off. Secret values are
//! held in [`SecretString`], whose `Debug` prints a mask.

use serde_json::{Map, Value};

/// A configuration problem, always naming the variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    InvalidEnv { name: &'static str, reason: String },
    #[error("secret {secret} is not a JSON object")]
    NotAnObject { secret: String },
    #[error("secret {secret}: missing required key `{key}`")]
    MissingKey { secret: String, key: String },
    #[error("secret {secret}: unknown key `{key}` (check its spelling)")]
    UnknownKey { secret: String, key: String },
    #[error("secret {secret}: key `{key}` {reason}")]
    InvalidValue {
        secret: String,
        key: String,
        reason: String,
    },
}

fn env(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError::MissingEnv(name)),
    }
}

fn env_number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| ConfigError::InvalidEnv {
            name,
            reason: format!("`{v}` is not a number"),
        }),
        _ => Ok(default),
    }
}

/// SQS's default and smallest-common maximum message size. The template raises
/// the queue to 1 MiB and passes the same number to the webhook.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;

/// Settings of the webhook function.
#[derive(Debug, Clone)]
pub struct WebhookEnv {
    pub queue_url: String,
    pub witiop_secret_id: String,
    /// The queue's `MaximumMessageSize`: a larger body is refused with 413
    /// rather than failing inside SendMessage.
    pub max_message_bytes: usize,
}

impl WebhookEnv {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            queue_url: env("QUEUE_URL")?,
            witiop_secret_id: env("WITIOP_SECRET_ID")?,
            max_message_bytes: env_number("MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)?,
        })
    }
}

/// The secrets the worker and links functions read, by id.
#[derive(Debug, Clone)]
pub struct SecretIds {
    pub witiop: String,
    pub salesforce: String,
    /// Where the Salesforce access token is shared between instances.
    pub salesforce_token: String,
}

impl SecretIds {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            witiop: env("WITIOP_SECRET_ID")?,
            salesforce: env("SALESFORCE_SECRET_ID")?,
            salesforce_token: env("SALESFORCE_TOKEN_SECRET_ID")?,
        })
    }
}

/// Settings of the worker function.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    pub secrets: SecretIds,
    pub dlq_url: String,
    /// How many records of one batch are processed at the same time.
    pub record_concurrency: usize,
    /// The main queue, whose records the worker backs off.
    pub queue_url: Option<String>,
    /// First backoff of a record that failed for a transient reason.
    pub retry_base_seconds: u64,
    /// Longest backoff (SQS allows at most 12 hours).
    pub retry_cap_seconds: u64,
    /// Largest attachment downloaded; with the record concurrency it sizes `/tmp`.
    pub max_attachment_bytes: u64,
    /// How often warm instances re-read the secrets.
    pub settings_refresh_seconds: u64,
}

impl WorkerEnv {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            secrets: SecretIds::from_env()?,
            dlq_url: env("DLQ_URL")?,
            record_concurrency: env_number("RECORD_CONCURRENCY", 5usize)?.max(1),
            queue_url: std::env::var("QUEUE_URL")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            retry_base_seconds: env_number("RETRY_BASE_SECONDS", 60u64)?.max(1),
            retry_cap_seconds: env_number("RETRY_CAP_SECONDS", 43_200u64)?.clamp(1, 43_200),
            max_attachment_bytes: env_number("MAX_ATTACHMENT_BYTES", 50u64 * 1024 * 1024)?,
            settings_refresh_seconds: env_number("SETTINGS_REFRESH_SECONDS", 60u64)?,
        })
    }
}

/// Settings of the links function.
#[derive(Debug, Clone)]
pub struct LinksEnv {
    pub secrets: SecretIds,
    /// How often warm instances re-read the secrets (the worker's variable
    /// and default).
    pub settings_refresh_seconds: u64,
}

impl LinksEnv {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            secrets: SecretIds::from_env()?,
            settings_refresh_seconds: env_number("SETTINGS_REFRESH_SECONDS", 60u64)?,
        })
    }
}

mod case_fields;
mod private_key;
mod salesforce;
mod witiop;

#[cfg(test)]
pub(crate) use case_fields::case_fields_for_tests;
pub use case_fields::{CaseField, CaseFieldValue, Piece, Placeholder};
pub use private_key::{PrivateKey, PrivateKeyError};
pub use salesforce::{
    is_secure_base_url, AuthFlow, Authorship, CasePolicy, ContactOwner, SalesforceConnection,
    SalesforceSettings,
};
pub use witiop::{is_loopback_host, MediaHost, WitiopSecret};

/// A secret's JSON object, checked against the keys it may hold.
pub(crate) struct Keys {
    pub(crate) secret: String,
    pub(crate) map: Map<String, Value>,
}

impl Keys {
    pub(crate) fn parse(secret: &str, text: &str, allowed: &[&str]) -> Result<Self, ConfigError> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return Err(ConfigError::NotAnObject {
                secret: secret.to_owned(),
            });
        };
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey {
                secret: secret.to_owned(),
                key: key.clone(),
            });
        }
        Ok(Self {
            secret: secret.to_owned(),
            map,
        })
    }

    pub(crate) fn invalid(&self, key: &str, reason: &str) -> ConfigError {
        ConfigError::InvalidValue {
            secret: self.secret.clone(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        }
    }

    pub(crate) fn is_explicit_null(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Null))
    }

    pub(crate) fn optional_str_allow_empty(
        &mut self,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(self.invalid(key, "must be a string")),
        }
    }

    pub(crate) fn optional_str(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .optional_str_allow_empty(key)?
            .filter(|s| !s.is_empty()))
    }

    pub(crate) fn required_str(&mut self, key: &str) -> Result<String, ConfigError> {
        self.optional_str(key)?
            .ok_or_else(|| ConfigError::MissingKey {
                secret: self.secret.clone(),
                key: key.to_owned(),
            })
    }

    pub(crate) fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // WitiOp's screen and hand-written JSON both produce "true"/"false".
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(self.invalid(key, "must be true or false")),
        }
    }
}

#[cfg(test)]
mod tests;
