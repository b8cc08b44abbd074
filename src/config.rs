//! Environment variables and secret values turned into typed settings.
//!
//! The contract is `configuration.md`: secrets are JSON documents in Secrets
//! Manager, the functions only get their ids. Parsing is strict on purpose: an
//! unknown key is an error naming it, because a typo such as
//! `set_audit_field` must not silently switch a feature off. Secret values are
//! held in [`SecretString`], whose `Debug` prints a mask.

use secrecy::{ExposeSecret, SecretString};
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

/// Settings of the worker function.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    pub witiop_secret_id: String,
    pub salesforce_secret_id: String,
    pub salesforce_token_secret_id: String,
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
            witiop_secret_id: env("WITIOP_SECRET_ID")?,
            salesforce_secret_id: env("SALESFORCE_SECRET_ID")?,
            salesforce_token_secret_id: env("SALESFORCE_TOKEN_SECRET_ID")?,
            dlq_url: env("DLQ_URL")?,
            record_concurrency: env_number("RECORD_CONCURRENCY", 10usize)?.max(1),
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
    pub witiop_secret_id: String,
    pub salesforce_secret_id: String,
    pub salesforce_token_secret_id: String,
}

impl LinksEnv {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            witiop_secret_id: env("WITIOP_SECRET_ID")?,
            salesforce_secret_id: env("SALESFORCE_SECRET_ID")?,
            salesforce_token_secret_id: env("SALESFORCE_TOKEN_SECRET_ID")?,
        })
    }
}

/// The `WITIOP_SECRET_ID` value.
#[derive(Debug, Clone)]
pub struct WitiopSecret {
    pub webhook_token: SecretString,
    /// Sent only to `media_hosts`, to download attachments.
    pub api_token: Option<SecretString>,
    /// Where attachments may be downloaded from; `None`: nowhere (links only).
    pub media_hosts: Option<Vec<MediaHost>>,
    /// Key of the signed Case links; `None`: no links.
    pub link_key: Option<SecretString>,
}

impl PartialEq for WitiopSecret {
    fn eq(&self, other: &Self) -> bool {
        let secret = |s: &Option<SecretString>| s.as_ref().map(|v| v.expose_secret().to_owned());
        self.webhook_token.expose_secret() == other.webhook_token.expose_secret()
            && secret(&self.api_token) == secret(&other.api_token)
            && self.media_hosts == other.media_hosts
            && secret(&self.link_key) == secret(&other.link_key)
    }
}

/// A `host` or `host:port` attachments may be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHost {
    /// Lower case, without brackets around an IPv6 address.
    pub host: String,
    /// `None`: the scheme's default port.
    pub port: Option<u16>,
}

impl MediaHost {
    /// `host` or `host:port`, as the secret lists them.
    pub fn parse_entry(entry: &str) -> Option<Self> {
        let url = reqwest::Url::parse(&format!("https://{}/", entry.trim())).ok()?;
        let host = url
            .host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        // Only a bare host or host:port: no credentials, path or query.
        let canonical = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        if !entry.trim().eq_ignore_ascii_case(&canonical) {
            return None;
        }
        Some(Self {
            host,
            port: url.port(),
        })
    }

    /// Whether `url` is on this host (its port, or the scheme's default).
    pub fn matches(&self, url: &reqwest::Url) -> bool {
        let host = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase());
        host.as_deref() == Some(self.host.as_str())
            && self.port.or_else(|| default_port(url)) == url.port_or_known_default()
    }
}

fn default_port(url: &reqwest::Url) -> Option<u16> {
    match url.scheme() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Whether `host` is this machine: the only place plain http may go.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl WitiopSecret {
    pub fn parse(secret_id: &str, text: &str) -> Result<Self, ConfigError> {
        let mut keys = Keys::parse(
            secret_id,
            text,
            &["webhook_token", "api_token", "media_hosts", "link_key"],
        )?;
        let webhook_token = keys.required_str("webhook_token")?;
        if webhook_token.len() < 16 {
            return Err(keys.invalid("webhook_token", "is shorter than 16 characters"));
        }
        let media_hosts = match keys.map.get("media_hosts") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut hosts = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str().and_then(MediaHost::parse_entry) {
                        Some(h) => hosts.push(h),
                        None => {
                            return Err(keys.invalid(
                                "media_hosts",
                                "must list hosts as \"host\" or \"host:port\"",
                            ))
                        }
                    }
                }
                Some(hosts)
            }
            Some(_) => return Err(keys.invalid("media_hosts", "must be a list of hosts")),
        };
        let link_key = keys.optional_str("link_key")?;
        if link_key.as_ref().is_some_and(|k| k.len() < 32) {
            return Err(keys.invalid("link_key", "is shorter than 32 characters"));
        }
        Ok(Self {
            webhook_token: SecretString::from(webhook_token),
            api_token: keys.optional_str("api_token")?.map(SecretString::from),
            media_hosts,
            link_key: link_key.map(SecretString::from),
        })
    }
}

/// Which OAuth 2.0 flow the worker logs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlow {
    /// Username-password: what WitiOp's screen asks for; retired for
    /// Connected Apps on 20 February 2027.
    Password,
    /// Client credentials on the org's My Domain URL.
    ClientCredentials,
}

impl AuthFlow {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// The `SALESFORCE_SECRET_ID` value: how to reach the org, and what to do
/// with a conversation there. The two halves change for different reasons
/// (a password rotation, an admin's choice) and are used by different code.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceSettings {
    pub connection: SalesforceConnection,
    pub policy: CasePolicy,
}

/// How to reach and log in to the org: all the REST client knows.
#[derive(Debug, Clone)]
pub struct SalesforceConnection {
    /// Without a trailing slash.
    pub login_url: String,
    pub consumer_key: String,
    pub consumer_secret: SecretString,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub security_token: Option<SecretString>,
    /// Digits only, e.g. `62.0`.
    pub api_version: String,
    pub auth_flow: AuthFlow,
}

impl PartialEq for SalesforceConnection {
    /// Secrets compare by value: a rotated password is a changed connection.
    fn eq(&self, other: &Self) -> bool {
        let secret = |s: &Option<SecretString>| s.as_ref().map(|v| v.expose_secret().to_owned());
        self.login_url == other.login_url
            && self.consumer_key == other.consumer_key
            && self.consumer_secret.expose_secret() == other.consumer_secret.expose_secret()
            && self.username == other.username
            && secret(&self.password) == secret(&other.password)
            && secret(&self.security_token) == secret(&other.security_token)
            && self.api_version == other.api_version
            && self.auth_flow == other.auth_flow
    }
}

/// What becomes of a conversation in the org: the choices an admin makes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CasePolicy {
    /// Comments (and the Case) dated and authored through audit fields.
    pub set_audit_fields: bool,
    /// Files uploaded to the Case rather than linked.
    pub add_attachments: bool,
    /// The User the customer's comments are posted as, with audit fields.
    pub customer_comment_username: Option<String>,
    /// Case.Origin; `None` leaves the org's default.
    pub case_origin: Option<String>,
    /// Owner of Cases whose agent has no active User.
    pub default_owner_username: Option<String>,
    /// A Unique External ID field on Case holding the conversation id.
    pub case_external_id_field: Option<String>,
}

const SALESFORCE_KEYS: &[&str] = &[
    "login_url",
    "consumer_key",
    "consumer_secret",
    "username",
    "password",
    "security_token",
    "api_version",
    "set_audit_fields",
    "add_attachments",
    "customer_comment_username",
    "auth_flow",
    "case_origin",
    "default_owner_username",
    "case_external_id_field",
];

impl SalesforceSettings {
    pub fn parse(secret_id: &str, text: &str) -> Result<Self, ConfigError> {
        let mut keys = Keys::parse(secret_id, text, SALESFORCE_KEYS)?;

        let login_url = keys
            .optional_str("login_url")?
            .unwrap_or_else(|| "https://login.salesforce.com".to_owned());
        let login_url = login_url.trim_end_matches('/').to_owned();
        if !is_secure_base_url(&login_url) {
            return Err(keys.invalid(
                "login_url",
                "must be an https URL (plain http only on a loopback host)",
            ));
        }

        let auth_flow = match keys.optional_str("auth_flow")?.as_deref() {
            None | Some("password") => AuthFlow::Password,
            Some("client_credentials") => AuthFlow::ClientCredentials,
            Some(_) => {
                return Err(keys.invalid(
                    "auth_flow",
                    "must be \"password\" or \"client_credentials\"",
                ))
            }
        };

        let consumer_key = keys.required_str("consumer_key")?;
        let consumer_secret = SecretString::from(keys.required_str("consumer_secret")?);
        let (username, password, security_token) = match auth_flow {
            AuthFlow::Password => (
                Some(keys.required_str("username")?),
                Some(SecretString::from(keys.required_str("password")?)),
                // Orgs with trusted IP ranges issue no security token: empty is valid.
                keys.optional_str_allow_empty("security_token")?
                    .map(SecretString::from),
            ),
            AuthFlow::ClientCredentials => {
                if ["login.salesforce.com", "test.salesforce.com"]
                    .iter()
                    .any(|h| login_url.ends_with(h))
                {
                    return Err(keys.invalid(
                        "login_url",
                        "must be the org's My Domain URL with client_credentials \
                         (login.salesforce.com and test.salesforce.com refuse that flow)",
                    ));
                }
                (
                    keys.optional_str("username")?,
                    keys.optional_str("password")?.map(SecretString::from),
                    keys.optional_str_allow_empty("security_token")?
                        .map(SecretString::from),
                )
            }
        };

        let api_version = keys
            .optional_str("api_version")?
            .unwrap_or_else(|| "62.0".to_owned());
        let api_version = api_version.trim_start_matches(['v', 'V']).to_owned();
        let valid_version = api_version.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
        });
        if !valid_version {
            return Err(keys.invalid("api_version", "must look like \"62.0\""));
        }

        let set_audit_fields = keys.optional_bool("set_audit_fields")?.unwrap_or(false);
        let add_attachments = keys.optional_bool("add_attachments")?.unwrap_or(false);
        let customer_comment_username = if set_audit_fields {
            Some(keys.required_str("customer_comment_username")?)
        } else {
            keys.optional_str("customer_comment_username")?
        };

        let case_origin = if keys.is_explicit_null("case_origin") {
            None
        } else {
            Some(
                keys.optional_str("case_origin")?
                    .unwrap_or_else(|| "WhatsApp".to_owned()),
            )
        };

        let case_external_id_field = keys.optional_str("case_external_id_field")?;
        if let Some(field) = &case_external_id_field {
            // The name goes into a URL path and a SOQL field list: allow only
            // what Salesforce allows in an API name.
            let ok = field
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(keys.invalid(
                    "case_external_id_field",
                    "is not a field API name (e.g. WitiOp_Conversation_Id__c)",
                ));
            }
        }

        Ok(Self {
            connection: SalesforceConnection {
                login_url,
                consumer_key,
                consumer_secret,
                username,
                password,
                security_token,
                api_version,
                auth_flow,
            },
            policy: CasePolicy {
                set_audit_fields,
                add_attachments,
                customer_comment_username,
                case_origin,
                default_owner_username: keys.optional_str("default_owner_username")?,
                case_external_id_field,
            },
        })
    }
}

/// An `https` base URL, or plain `http` on a loopback host (local runs):
/// credentials and tokens never travel in clear text.
pub fn is_secure_base_url(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.scheme(), u.host_str()) {
            ("https", Some(_)) => true,
            ("http", Some(host)) => is_loopback_host(host),
            _ => false,
        },
        Err(_) => false,
    }
}

/// A secret's JSON object, checked against the keys it may hold.
struct Keys {
    secret: String,
    map: Map<String, Value>,
}

impl Keys {
    fn parse(secret: &str, text: &str, allowed: &[&str]) -> Result<Self, ConfigError> {
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

    fn invalid(&self, key: &str, reason: &str) -> ConfigError {
        ConfigError::InvalidValue {
            secret: self.secret.clone(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn is_explicit_null(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Null))
    }

    fn optional_str_allow_empty(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(self.invalid(key, "must be a string")),
        }
    }

    fn optional_str(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .optional_str_allow_empty(key)?
            .filter(|s| !s.is_empty()))
    }

    fn required_str(&mut self, key: &str) -> Result<String, ConfigError> {
        self.optional_str(key)?
            .ok_or_else(|| ConfigError::MissingKey {
                secret: self.secret.clone(),
                key: key.to_owned(),
            })
    }

    fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
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
mod tests {
    use super::*;

    const FULL: &str = r#"{
      "login_url": "https://login.salesforce.com/",
      "consumer_key": "3MVG9key", "consumer_secret": "D1A2secret",
      "username": "witiop.api@acme.example", "password": "hunter2", "security_token": "tok",
      "api_version": "v62.0", "set_audit_fields": true, "add_attachments": "false",
      "customer_comment_username": "witiop.customer@acme.example"
    }"#;

    #[test]
    fn full_secret_parses_with_defaults() {
        let s = SalesforceSettings::parse("sf", FULL).unwrap();
        assert_eq!(s.connection.login_url, "https://login.salesforce.com");
        assert_eq!(s.connection.api_version, "62.0");
        assert!(s.policy.set_audit_fields);
        assert!(!s.policy.add_attachments);
        assert_eq!(s.connection.auth_flow, AuthFlow::Password);
        assert_eq!(s.policy.case_origin.as_deref(), Some("WhatsApp"));
        assert_eq!(
            s.connection.password.as_ref().unwrap().expose_secret(),
            "hunter2"
        );
        assert_eq!(s.policy.case_external_id_field, None);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = SalesforceSettings::parse("sf", FULL).unwrap();
        let printed = format!("{s:?}");
        for secret in ["hunter2", "D1A2secret", "\"tok\""] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        let w = WitiopSecret::parse(
            "w",
            r#"{"webhook_token":"0123456789abcdef-token","api_token":"media"}"#,
        )
        .unwrap();
        assert!(!format!("{w:?}").contains("0123456789abcdef-token"));
    }

    #[test]
    fn errors_name_the_key() {
        let edit = |from: &str, to: &str| FULL.replace(from, to);
        let cases = [
            (
                edit("\"set_audit_fields\"", "\"set_audit_field\""),
                "unknown key `set_audit_field`",
            ),
            (
                edit("\"consumer_key\": \"3MVG9key\",", ""),
                "missing required key `consumer_key`",
            ),
            (
                edit("\"password\": \"hunter2\",", ""),
                "missing required key `password`",
            ),
            (
                edit(
                    "\"customer_comment_username\": \"witiop.customer@acme.example\"",
                    "\"case_origin\": null",
                ),
                "missing required key `customer_comment_username`",
            ),
            (edit("v62.0", "latest"), "key `api_version`"),
            (edit("\"false\"", "\"maybe\""), "key `add_attachments`"),
            (
                edit("https://login.salesforce.com/", "ftp://x"),
                "key `login_url`",
            ),
            ("[1]".to_owned(), "not a JSON object"),
        ];
        for (text, expected) in cases {
            let err = SalesforceSettings::parse("sf", &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn client_credentials_needs_my_domain_and_no_password() {
        let cc = r#"{"auth_flow":"client_credentials","consumer_key":"k","consumer_secret":"s",
                     "login_url":"https://acme.my.salesforce.com","case_origin":null,
                     "case_external_id_field":"WitiOp_Conversation_Id__c"}"#;
        let s = SalesforceSettings::parse("sf", cc).unwrap();
        assert_eq!(s.connection.auth_flow, AuthFlow::ClientCredentials);
        assert_eq!(s.policy.case_origin, None);
        assert_eq!(
            s.policy.case_external_id_field.as_deref(),
            Some("WitiOp_Conversation_Id__c")
        );
        let on_login = cc.replace(
            "https://acme.my.salesforce.com",
            "https://login.salesforce.com",
        );
        assert!(SalesforceSettings::parse("sf", &on_login)
            .unwrap_err()
            .to_string()
            .contains("My Domain"));
        let bad_field = cc.replace("WitiOp_Conversation_Id__c", "Id' OR");
        assert!(SalesforceSettings::parse("sf", &bad_field).is_err());
    }

    #[test]
    fn witiop_secret_rules() {
        assert!(WitiopSecret::parse("w", r#"{"webhook_token":"short"}"#)
            .unwrap_err()
            .to_string()
            .contains("webhook_token"));
        assert!(
            WitiopSecret::parse("w", r#"{"webhook_tokn":"0123456789abcdef"}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown key `webhook_tokn`")
        );
        let w = WitiopSecret::parse("w", r#"{"webhook_token":"0123456789abcdef"}"#).unwrap();
        assert!(w.api_token.is_none());
    }
}
