//! Why a record could not be processed, how to treat it, and what an admin
//! should do about it.

use crate::case::PlanError;
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
        let code = self.code();
        match code.as_str() {
            "INVALID_FIELD_FOR_INSERT_UPDATE" => format!(
                "{self}. Enable \"Set Audit Fields upon Record Creation\" in Setup > User Interface and give the API user a permission set with it, or set \"set_audit_fields\": false"
            ),
            "INACTIVE_OWNER_OR_USER" => format!("{self}. Activate the user or change the agent's e-mail in Salesforce"),
            "invalid_grant" => format!("{self}. Check username, password and security token in the Salesforce secret (or that the password flow is allowed), then redrive"),
            "invalid_client_id" | "invalid_client" => format!("{self}. Check consumer_key/consumer_secret against the Connected App, then redrive"),
            "INVALID_FIELD" => format!("{self}. A field does not exist or the API user cannot see it: check field-level security (and case_external_id_field)"),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" => format!("{self}. Case Origin is a restricted picklist without the configured value: set \"case_origin\" in the Salesforce secret to one of its values (or null), or add the value to the picklist, then redrive"),
            "DUPLICATES_DETECTED" => format!("{self}. A duplicate rule blocked the save: let the API user bypass it or make the rule an alert, then redrive"),
            "DUPLICATE_VALUE" => format!("{self}. A Unique field clashes: check that case_external_id_field names a field that holds only WitiOp conversation ids"),
            _ => self.to_string(),
        }
    }
}
