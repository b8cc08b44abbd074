//! One error type for everything Salesforce can answer, and how to react to it.

use serde::Deserialize;
use serde_json::Value;

use crate::aws::SecretStoreError;

/// One entry of Salesforce's error array, whichever shape it came in:
/// `errorCode` (REST) or `statusCode` (per-record save results).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(alias = "errorCode", alias = "statusCode")]
    pub code: ErrorCode,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// The error codes the integration acts on, read once from Salesforce's
/// answer; every other code is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// The session expired or was revoked: log in again.
    InvalidSessionId,
    /// The org's rolling 24-hour API allowance is spent, or too many
    /// long-running requests are in flight.
    RequestLimitExceeded,
    ServerUnavailable,
    UnableToLockRow,
    /// A Unique field (the Case's External ID) already holds the value.
    DuplicateValue,
    /// A duplicate rule blocked the save.
    DuplicatesDetected,
    /// A subrequest Salesforce did not run because another one failed.
    ProcessingHalted,
    /// A record undone because another record of the same `allOrNone` request failed.
    AllOrNoneRolledBack,
    /// Audit fields without the permission to set them.
    InvalidFieldForInsertUpdate,
    InactiveOwnerOrUser,
    InvalidField,
    InvalidOrNullForRestrictedPicklist,
    Other(String),
}

/// OAuth 2.0's error codes as Salesforce's token endpoint answers them
/// (RFC 6749, section 5.2; Salesforce adds `invalid_client_id`), the ones
/// whose advice differs named, every other one kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCode {
    /// Wrong user name, password or token, a blocked flow, or (JWT) a user
    /// not pre-authorised for the app.
    InvalidGrant,
    /// The consumer key is unknown to the org.
    InvalidClientId,
    /// The consumer secret does not match.
    InvalidClient,
    Other(String),
}

impl LoginCode {
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_grant" => Self::InvalidGrant,
            "invalid_client_id" => Self::InvalidClientId,
            "invalid_client" => Self::InvalidClient,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl ErrorCode {
    const NAMED: [(&'static str, ErrorCode); 12] = [
        ("INVALID_SESSION_ID", Self::InvalidSessionId),
        ("REQUEST_LIMIT_EXCEEDED", Self::RequestLimitExceeded),
        ("SERVER_UNAVAILABLE", Self::ServerUnavailable),
        ("UNABLE_TO_LOCK_ROW", Self::UnableToLockRow),
        ("DUPLICATE_VALUE", Self::DuplicateValue),
        ("DUPLICATES_DETECTED", Self::DuplicatesDetected),
        ("PROCESSING_HALTED", Self::ProcessingHalted),
        (
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            Self::AllOrNoneRolledBack,
        ),
        (
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            Self::InvalidFieldForInsertUpdate,
        ),
        ("INACTIVE_OWNER_OR_USER", Self::InactiveOwnerOrUser),
        ("INVALID_FIELD", Self::InvalidField),
        (
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            Self::InvalidOrNullForRestrictedPicklist,
        ),
    ];

    pub fn parse(code: &str) -> Self {
        Self::NAMED
            .iter()
            .find(|(name, _)| *name == code)
            .map_or_else(|| Self::Other(code.to_owned()), |(_, c)| c.clone())
    }

    /// As Salesforce spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(code) => code,
            named => Self::NAMED
                .iter()
                .find(|(_, c)| c == named)
                .map_or("", |(name, _)| name),
        }
    }

    /// Failed only because another part of the same request did.
    pub fn is_consequence(&self) -> bool {
        matches!(self, Self::ProcessingHalted | Self::AllOrNoneRolledBack)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(Self::parse(&code))
    }
}

/// What a record waits for before its next delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A transient failure: the usual doubling.
    Backoff,
    /// The org's API allowance to recover: at least an hour.
    ForAllowance,
}

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient (503, row lock, timeout): retry soon, within the invocation.
    RetryNow,
    /// Nothing will get through for a while (the org's allowance is spent,
    /// the credentials are refused): stop calling, let SQS bring the message
    /// back after `Wait`.
    RetryLater(Wait),
    /// The session is gone: log in again and retry once.
    Relogin,
    /// Bad data or configuration: retrying cannot help.
    Permanent,
}

impl ErrorClass {
    /// How long a record that failed this way waits in the queue.
    pub fn wait(self) -> Wait {
        match self {
            Self::RetryLater(wait) => wait,
            Self::RetryNow | Self::Relogin | Self::Permanent => Wait::Backoff,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    #[error("Salesforce login failed ({flow} flow at {login_url}): {error}: {description}")]
    Login {
        flow: &'static str,
        login_url: String,
        error: String,
        description: String,
        /// HTTP status of the token endpoint, 0 when it was not reached.
        status: u16,
    },
    #[error("Salesforce answered {status}: {}", summary(.errors))]
    Api { status: u16, errors: Vec<ApiError> },
    #[error("Salesforce answered {status} with a non-JSON body: {snippet}")]
    NonJson { status: u16, snippet: String },
    #[error("could not reach Salesforce: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("no time left in this invocation for another Salesforce call")]
    OutOfTime,
    /// A body that does not read as the documented shape; serde's error
    /// says where and why.
    #[error("unexpected answer from Salesforce: {0}")]
    Decode(#[source] serde_json::Error),
    /// A body that reads, but lacks what the documented answer carries.
    #[error("unexpected answer from Salesforce: {0}")]
    Incomplete(String),
    #[error(transparent)]
    TokenStore(#[from] SecretStoreError),
}

fn summary(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.fields.is_empty() {
                format!("{}: {}", e.code, e.message)
            } else {
                format!("{} ({}): {}", e.code, e.fields.join(", "), e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl SalesforceError {
    /// Builds the error for a non-success answer from its status and raw body.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => match parse_errors(&value) {
                Some(errors) if !errors.is_empty() => Self::Api { status, errors },
                _ => Self::NonJson {
                    status,
                    snippet: snippet(body),
                },
            },
            Err(_) => Self::NonJson {
                status,
                snippet: snippet(body),
            },
        }
    }

    /// The token endpoint's refusal, typed, when this is a refused login.
    pub fn login_code(&self) -> Option<LoginCode> {
        match self {
            Self::Login { error, .. } => Some(LoginCode::parse(error)),
            _ => None,
        }
    }

    /// The code that explains the failure: the first one that is not a
    /// consequence of another (halted, rolled back), when Salesforce gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { errors, .. } => errors
                .iter()
                .find(|e| !e.code.is_consequence())
                .or(errors.first())
                .map(|e| e.code.as_str()),
            Self::Login { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The Salesforce error codes in the answer.
    pub fn codes(&self) -> impl Iterator<Item = &ErrorCode> {
        let errors: &[ApiError] = match self {
            Self::Api { errors, .. } => errors,
            _ => &[],
        };
        errors.iter().map(|e| &e.code)
    }

    /// A call that got no answer in time.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_timeout(),
            Self::OutOfTime => true,
            _ => false,
        }
    }

    /// How to react, from every code in the answer (not only the first):
    /// the class and, for what must wait, how long.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { status, errors } => {
                let has = |c: ErrorCode| errors.iter().any(|e| e.code == c);
                if has(ErrorCode::InvalidSessionId) || *status == 401 {
                    ErrorClass::Relogin
                } else if has(ErrorCode::RequestLimitExceeded) {
                    ErrorClass::RetryLater(Wait::ForAllowance)
                } else if has(ErrorCode::UnableToLockRow)
                    || has(ErrorCode::ServerUnavailable)
                    || *status >= 500
                {
                    ErrorClass::RetryNow
                } else {
                    ErrorClass::Permanent
                }
            }
            Self::NonJson { status, .. } if *status == 401 => ErrorClass::Relogin,
            Self::NonJson { status, .. } if *status >= 500 || *status == 429 => {
                ErrorClass::RetryNow
            }
            Self::NonJson { .. } => ErrorClass::Permanent,
            Self::Transport(_) | Self::OutOfTime => ErrorClass::RetryNow,
            // A refused login needs a person to fix the credentials; a login
            // endpoint that is down or throttling is transient.
            Self::Login { status, .. } if *status == 0 || *status >= 500 || *status == 429 => {
                ErrorClass::RetryNow
            }
            // Refused credentials: no conversation can get through until
            // someone fixes the secret, and parking them all would only add
            // a redrive to the fix. They wait in the queue (the refused-login
            // alarm wakes someone) and go through once the secret is right.
            Self::Login { .. } => ErrorClass::RetryLater(Wait::Backoff),
            Self::Decode(_) | Self::Incomplete(_) => ErrorClass::Permanent,
            Self::TokenStore(_) => ErrorClass::RetryLater(Wait::Backoff),
        }
    }
}

/// Reads either error shape: a REST error array, a single error object, or
/// a save result carrying `errors`.
pub fn parse_errors(value: &Value) -> Option<Vec<ApiError>> {
    match value {
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Some(inner) = item.get("errors") {
                    out.extend(parse_errors(inner)?);
                } else {
                    out.push(serde_json::from_value(item.clone()).ok()?);
                }
            }
            Some(out)
        }
        Value::Object(map) if map.contains_key("errors") => parse_errors(&map["errors"]),
        Value::Object(_) => serde_json::from_value(value.clone()).ok().map(|e| vec![e]),
        _ => None,
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_shapes_and_html_are_understood() {
        let cases: Vec<(u16, &str, Option<&str>, ErrorClass)> = vec![
            (
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
                Some("INVALID_SESSION_ID"),
                ErrorClass::Relogin,
            ),
            (
                503,
                r#"[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]"#,
                Some("SERVER_UNAVAILABLE"),
                ErrorClass::RetryNow,
            ),
            (
                503,
                "<html><body><h1>Service Unavailable</h1></body></html>",
                None,
                ErrorClass::RetryNow,
            ),
            (
                400,
                r#"[{"message":"unable to obtain exclusive access","errorCode":"UNABLE_TO_LOCK_ROW"}]"#,
                Some("UNABLE_TO_LOCK_ROW"),
                ErrorClass::RetryNow,
            ),
            (
                403,
                r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
                Some("REQUEST_LIMIT_EXCEEDED"),
                ErrorClass::RetryLater(Wait::ForAllowance),
            ),
            (
                400,
                r#"[{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]}]"#,
                Some("REQUIRED_FIELD_MISSING"),
                ErrorClass::Permanent,
            ),
            (
                400,
                r#"[{"message":"bad","errorCode":"MALFORMED_QUERY"}]"#,
                Some("MALFORMED_QUERY"),
                ErrorClass::Permanent,
            ),
            (400, "", None, ErrorClass::Permanent),
        ];
        for (status, body, code, class) in cases {
            let e = SalesforceError::from_response(status, body.as_bytes());
            assert_eq!(e.code(), code, "{body}");
            assert_eq!(e.class(), class, "{body}");
        }
        let e = SalesforceError::from_response(400, br#"[{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"m","fields":["LastName"]}]}]"#);
        assert!(e
            .to_string()
            .contains("REQUIRED_FIELD_MISSING (LastName): m"));
    }
}
