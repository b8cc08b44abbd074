//! Why a record could not be processed, how to treat it, and what an admin
//! should do about it.

use crate::case::PlanError;
use crate::salesforce::error::{ErrorCode, LoginCode, Wait};
use crate::salesforce::{ErrorClass, SalesforceError};

/// Why a record cannot be processed now.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the body is not a valid close event: {0}")]
    InvalidEvent(#[from] crate::event::InvalidEvent),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error("configuration: {0}")]
    Configuration(#[from] PlanError),
    #[error("not finished before the invocation's deadline")]
    OutOfTime,
}

impl RecordError {
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidEvent(_) | Self::Configuration(_) => ErrorClass::Permanent,
            Self::Salesforce(e) => e.class(),
            Self::OutOfTime => ErrorClass::RetryNow,
        }
    }

    /// How long the record waits in the queue when it is retried later.
    pub(crate) fn wait(&self) -> Wait {
        self.class().wait()
    }

    /// A call got no answer in time, or the record ran out of time.
    pub(crate) fn is_timeout(&self) -> bool {
        match self {
            Self::Salesforce(e) => e.is_timeout(),
            Self::OutOfTime => true,
            Self::InvalidEvent(_) | Self::Configuration(_) => false,
        }
    }

    /// A wait the integration expects and rides out in the queue, each with
    /// its own alarm: Salesforce down, slow or locking a row (the record
    /// out of time included), the org's API allowance spent, a refused
    /// login. Anything else left in the queue means something that should
    /// work did not: the token secret cannot be read or written, or
    /// Salesforce refused a session it had just issued. Those count against
    /// the worker's health ([`super::health`]).
    pub(crate) fn is_expected_wait(&self) -> bool {
        match self {
            Self::OutOfTime => true,
            Self::Salesforce(SalesforceError::TokenStore(_)) => false,
            Self::Salesforce(e) => {
                matches!(e.class(), ErrorClass::RetryNow | ErrorClass::RetryLater(_))
            }
            // Parked, never left to wait.
            Self::InvalidEvent(_) | Self::Configuration(_) => false,
        }
    }

    /// A short code for logs, metrics and the dead-letter attributes.
    pub fn code(&self) -> String {
        match self {
            Self::InvalidEvent(_) => "invalid_event".into(),
            Self::Configuration(_) => "configuration".into(),
            Self::Salesforce(e) => e.code().unwrap_or("salesforce_error").to_owned(),
            Self::OutOfTime => "out_of_time".into(),
        }
    }

    /// A refused login or a configuration problem: new settings may fix it.
    pub(crate) fn may_be_fixed_by_settings(&self) -> bool {
        match self {
            Self::Configuration(_) => true,
            Self::Salesforce(SalesforceError::Login { .. }) => true,
            Self::Salesforce(e) => e.class() == ErrorClass::Permanent,
            Self::InvalidEvent(_) | Self::OutOfTime => false,
        }
    }

    /// A bounded version of [`Self::code`] for metric dimensions.
    pub fn metric_code(&self) -> &'static str {
        match self {
            Self::InvalidEvent(_) => "invalid_event",
            Self::Configuration(_) => "configuration",
            Self::OutOfTime => "out_of_time",
            Self::Salesforce(SalesforceError::Login { .. }) => "login_refused",
            Self::Salesforce(_) => "salesforce",
        }
    }

    /// The same, in words an admin can act on.
    pub fn advice(&self) -> String {
        let Self::Salesforce(e) = self else {
            return self.to_string();
        };
        if let (SalesforceError::Login { flow, .. }, Some(code)) = (e, e.login_code()) {
            if *flow == "jwt_bearer"
                && matches!(code, LoginCode::InvalidGrant | LoginCode::InvalidClientId)
            {
                return format!("{self}. Check the certificate on the app against private_key, consumer_key, username and that the user is pre-authorised for the app (runbook 4.4), then redrive");
            }
            return match code {
                LoginCode::InvalidGrant => format!("{self}. Check username, password and security token in the Salesforce secret (or that the password flow is allowed), then redrive"),
                LoginCode::InvalidClientId | LoginCode::InvalidClient => format!("{self}. Check consumer_key/consumer_secret against the Connected App, then redrive"),
                LoginCode::Other(_) => self.to_string(),
            };
        }
        let code = e.codes().find(|c| !c.is_consequence());
        match code {
            Some(ErrorCode::InvalidFieldForInsertUpdate) => format!(
                "{self}. Enable \"Set Audit Fields upon Record Creation\" in Setup > User Interface and give the API user a permission set with it, or set \"set_audit_fields\": false"
            ),
            Some(ErrorCode::InactiveOwnerOrUser) => format!("{self}. Activate the user or change the agent's e-mail in Salesforce"),
            Some(ErrorCode::InvalidField) => format!("{self}. A field does not exist or the API user cannot see it: check field-level security (and case_external_id_field)"),
            Some(ErrorCode::InvalidOrNullForRestrictedPicklist) => format!("{self}. Case Origin is a restricted picklist without the configured value: set \"case_origin\" in the Salesforce secret to one of its values (or null), or add the value to the picklist, then redrive"),
            Some(ErrorCode::DuplicatesDetected) => format!("{self}. A duplicate rule blocked the save: let the API user bypass it or make the rule an alert, then redrive"),
            Some(ErrorCode::DuplicateValue) => format!("{self}. A Unique field clashes: check that case_external_id_field names a field that holds only WitiOp conversation ids; if the message reads <unknown>, the Case exists but the API user cannot see it: give it read access to all Cases (View All on Case), then redrive"),
            _ => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(flow: &'static str, error: &str) -> RecordError {
        RecordError::Salesforce(SalesforceError::Login {
            flow,
            login_url: "https://login.salesforce.com".into(),
            error: error.into(),
            description: "d".into(),
            status: 400,
        })
    }

    fn answered(status: u16, code: &str) -> RecordError {
        RecordError::Salesforce(SalesforceError::from_response(
            status,
            format!(r#"[{{"message":"m","errorCode":"{code}"}}]"#).as_bytes(),
        ))
    }

    /// The waits each alarm of their own covers are expected; a token
    /// secret that fails, or a fresh session refused, is not.
    #[test]
    fn only_the_waits_the_integration_rides_out_are_expected() {
        let token_store =
            RecordError::Salesforce(SalesforceError::TokenStore(crate::aws::SecretStoreError {
                secret_id: "tokens".into(),
                operation: "PutSecretValue",
                detail: "AccessDeniedException".into(),
                source: "AccessDeniedException".into(),
            }));
        for (error, expected) in [
            (answered(503, "SERVER_UNAVAILABLE"), true),
            (answered(400, "UNABLE_TO_LOCK_ROW"), true),
            (answered(403, "REQUEST_LIMIT_EXCEEDED"), true),
            (refused("password", "invalid_grant"), true),
            (refused("jwt_bearer", "invalid_client_id"), true),
            (RecordError::OutOfTime, true),
            (answered(401, "INVALID_SESSION_ID"), false),
            (token_store, false),
        ] {
            assert_eq!(error.is_expected_wait(), expected, "{error}");
        }
    }

    /// A refused login points at what the flow actually uses.
    #[test]
    fn login_advice_follows_the_flow() {
        for (flow, error, expected) in [
            ("password", "invalid_grant", "security token"),
            ("password", "invalid_client_id", "consumer_secret"),
            ("jwt_bearer", "invalid_grant", "pre-authorised"),
            ("jwt_bearer", "invalid_client_id", "consumer_key"),
        ] {
            let advice = refused(flow, error).advice();
            assert!(advice.contains(expected), "{flow} {error}: {advice}");
        }
        assert!(!refused("jwt_bearer", "invalid_grant")
            .advice()
            .contains("password"));
    }
}
