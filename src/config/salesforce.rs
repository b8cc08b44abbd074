//! The `SALESFORCE_SECRET_ID` value: the connection and the Case policy.

use secrecy::{ExposeSecret, SecretString};

use serde_json::Value;

use super::case_fields::{is_api_name, parse_case_fields, CaseField};
use super::private_key::PrivateKey;
use super::witiop::is_loopback_host;
use super::{ConfigError, Keys};

/// Which OAuth 2.0 flow the worker logs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlow {
    /// Username-password: what WitiOp's screen asks for; retired for
    /// Connected Apps on 20 February 2027.
    Password,
    /// Client credentials on the org's My Domain URL.
    ClientCredentials,
    /// JWT bearer: an assertion signed with `private_key`, no password and
    /// no consumer secret; the user must be pre-authorised for the app.
    JwtBearer,
}

impl AuthFlow {
    /// The flow's name in the secret, in logs and in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::JwtBearer => "jwt_bearer",
        }
    }

    /// The token request's `grant_type`: the JWT bearer grant is named by
    /// its URN (RFC 7523, section 2.1), as the OAuth 2.0 JWT Bearer Flow for
    /// Server-to-Server Integration page shows
    /// (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm).
    pub fn grant_type(self) -> &'static str {
        match self {
            Self::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            other => other.as_str(),
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
    /// Present for the password and client credentials flows; the JWT
    /// bearer flow authenticates the app by the assertion's signature.
    pub consumer_secret: Option<SecretString>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub security_token: Option<SecretString>,
    /// Present exactly when `auth_flow` is [`AuthFlow::JwtBearer`].
    pub private_key: Option<PrivateKey>,
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
            && secret(&self.consumer_secret) == secret(&other.consumer_secret)
            && self.username == other.username
            && secret(&self.password) == secret(&other.password)
            && secret(&self.security_token) == secret(&other.security_token)
            && self.api_version == other.api_version
            && self.auth_flow == other.auth_flow
            && self.private_key == other.private_key
    }
}

/// Who the comments are written as: decided once, when the settings are read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Authorship {
    /// Everything as the API user at the time of writing; each comment's
    /// header says who wrote it and when.
    #[default]
    ApiUser,
    /// `CreatedById` and `CreatedDate` set through audit fields ("Set Audit
    /// Fields upon Record Creation"): the agent's comments as the agent's
    /// User, the customer's as this one.
    AuditFields { customer_username: String },
}

impl Authorship {
    pub fn audit_fields(&self) -> bool {
        matches!(self, Self::AuditFields { .. })
    }

    /// The User the customer's comments are posted as, with audit fields.
    pub fn customer_username(&self) -> Option<&str> {
        match self {
            Self::AuditFields { customer_username } => Some(customer_username),
            Self::ApiUser => None,
        }
    }
}

/// What becomes of a conversation in the org: the choices an admin makes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CasePolicy {
    /// Who the comments are written as, and when.
    pub authorship: Authorship,
    /// Files uploaded to the Case rather than linked.
    pub add_attachments: bool,
    /// Case.Origin; `None` leaves the org's default.
    pub case_origin: Option<String>,
    /// Owner of Cases whose agent has no active User.
    pub default_owner_username: Option<String>,
    /// A Unique External ID field on Case holding the conversation id.
    pub case_external_id_field: Option<String>,
    /// The Account new Contacts are created under.
    pub contact_account_id: Option<String>,
    /// Who owns a Contact the integration creates.
    pub contact_owner: ContactOwner,
    /// The admin's own Case fields.
    pub case_fields: Vec<CaseField>,
}

/// Who owns a Contact the integration creates. Salesforce keeps a Contact
/// linked to no Account private to its owner and to administrators,
/// whatever the sharing model: owned by the API user, the agent who owns
/// the Case would see a customer name they cannot open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContactOwner {
    /// The new Case's owner: the agent, else the default owner.
    #[default]
    CaseOwner,
    /// The API user, as before this setting existed.
    ApiUser,
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
    "contact_account_id",
    "contact_owner",
    "case_fields",
    "private_key",
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
            Some("jwt_bearer") => AuthFlow::JwtBearer,
            Some(_) => {
                return Err(keys.invalid(
                    "auth_flow",
                    "must be \"password\", \"client_credentials\" or \"jwt_bearer\"",
                ))
            }
        };

        let consumer_key = keys.required_str("consumer_key")?;
        let consumer_secret = match auth_flow {
            AuthFlow::JwtBearer => keys.optional_str("consumer_secret")?,
            _ => Some(keys.required_str("consumer_secret")?),
        }
        .map(SecretString::from);
        let private_key = match auth_flow {
            AuthFlow::JwtBearer => {
                let pem = SecretString::from(keys.required_str("private_key")?);
                // The reason names the key, never its value.
                let key = PrivateKey::from_pem(pem.expose_secret())
                    .map_err(|e| keys.invalid("private_key", &e.to_string()))?;
                Some(key)
            }
            // A key the flow would not use is a mistake worth hearing about:
            // the admin believes the worker signs with it.
            _ if keys.optional_str("private_key")?.is_some() => {
                return Err(keys.invalid(
                    "private_key",
                    "is only used with \"auth_flow\": \"jwt_bearer\"",
                ))
            }
            _ => None,
        };
        let (username, password, security_token) = match auth_flow {
            AuthFlow::Password => (
                Some(keys.required_str("username")?),
                Some(SecretString::from(keys.required_str("password")?)),
                // Orgs with trusted IP ranges issue no security token: empty is valid.
                keys.optional_str_allow_empty("security_token")?
                    .map(SecretString::from),
            ),
            AuthFlow::JwtBearer => (
                // The assertion's subject: the API user, pre-authorised for the app.
                Some(keys.required_str("username")?),
                keys.optional_str("password")?.map(SecretString::from),
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
        let authorship = if set_audit_fields {
            Authorship::AuditFields {
                customer_username: keys.required_str("customer_comment_username")?,
            }
        } else {
            // Checked for its type, but unused without audit fields.
            keys.optional_str("customer_comment_username")?;
            Authorship::ApiUser
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
            if !is_api_name(field) {
                return Err(keys.invalid(
                    "case_external_id_field",
                    "is not a field API name (e.g. WitiOp_Conversation_Id__c)",
                ));
            }
        }

        let contact_account_id = keys.optional_str("contact_account_id")?;
        if let Some(id) = &contact_account_id {
            // An Account id: 15 or 18 letters and digits beginning with
            // Account's key prefix, 001. It goes into every new Contact.
            let ok = matches!(id.len(), 15 | 18)
                && id.starts_with("001")
                && id.chars().all(|c| c.is_ascii_alphanumeric());
            if !ok {
                return Err(keys.invalid(
                    "contact_account_id",
                    "is not an Account id (15 or 18 characters starting with 001)",
                ));
            }
        }
        let contact_owner = match keys.optional_str("contact_owner")?.as_deref() {
            None | Some("case_owner") => ContactOwner::CaseOwner,
            Some("api_user") => ContactOwner::ApiUser,
            Some(_) => {
                return Err(keys.invalid("contact_owner", "must be \"case_owner\" or \"api_user\""))
            }
        };

        let case_fields = match keys.map.get("case_fields") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => parse_case_fields(map, case_external_id_field.as_deref())
                .map_err(|reason| keys.invalid("case_fields", &reason))?,
            Some(_) => return Err(keys.invalid("case_fields", "must be a JSON object")),
        };

        Ok(Self {
            connection: SalesforceConnection {
                login_url,
                consumer_key,
                consumer_secret,
                username,
                password,
                security_token,
                private_key,
                api_version,
                auth_flow,
            },
            policy: CasePolicy {
                authorship,
                add_attachments,
                case_origin,
                default_owner_username: keys.optional_str("default_owner_username")?,
                case_external_id_field,
                contact_account_id,
                contact_owner,
                case_fields,
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
