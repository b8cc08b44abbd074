//! Parsing of the environment and the secrets.
use secrecy::ExposeSecret;

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
    assert_eq!(
        s.policy.authorship,
        Authorship::AuditFields {
            customer_username: "witiop.customer@acme.example".into()
        }
    );
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
        (
            edit(
                "\"add_attachments\": \"false\"",
                "\"add_attachments\": \"false\", \"contact_account_id\": \"003000000000001\"",
            ),
            "key `contact_account_id`",
        ),
        (
            edit(
                "\"add_attachments\": \"false\"",
                "\"add_attachments\": \"false\", \"contact_owner\": \"agent\"",
            ),
            "key `contact_owner`",
        ),
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
fn contacts_are_owned_like_their_case_unless_told_otherwise() {
    let base = r#"{"auth_flow":"client_credentials","consumer_key":"k","consumer_secret":"s",
                   "login_url":"https://acme.my.salesforce.com"}"#;
    let s = SalesforceSettings::parse("sf", base).unwrap();
    assert_eq!(
        s.policy.contact_owner,
        crate::config::ContactOwner::CaseOwner
    );
    assert_eq!(s.policy.contact_account_id, None);
    let set = base.replace(
        "\"consumer_key\":\"k\"",
        "\"consumer_key\":\"k\",\"contact_owner\":\"api_user\",\"contact_account_id\":\"001000000000001AAA\"",
    );
    let s = SalesforceSettings::parse("sf", &set).unwrap();
    assert_eq!(s.policy.contact_owner, crate::config::ContactOwner::ApiUser);
    assert_eq!(
        s.policy.contact_account_id.as_deref(),
        Some("001000000000001AAA")
    );
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

const APP_KEY: &str = include_str!("../../local-salesforce/src/test-keys/app.key.pem");
const PKCS1_KEY: &str = include_str!("../../local-salesforce/src/test-keys/other.key.pem");

fn jwt_secret(private_key: &str) -> String {
    serde_json::json!({
        "auth_flow": "jwt_bearer", "login_url": "https://acme.my.salesforce.com",
        "consumer_key": "3MVG9key", "username": "witiop.api@acme.example",
        "private_key": private_key,
    })
    .to_string()
}

#[test]
fn jwt_bearer_needs_a_key_and_a_user_but_no_password_or_consumer_secret() {
    let s = SalesforceSettings::parse("sf", &jwt_secret(APP_KEY)).unwrap();
    let c = &s.connection;
    assert_eq!(c.auth_flow, AuthFlow::JwtBearer);
    assert!(c.consumer_secret.is_none() && c.password.is_none());
    assert_eq!(c.username.as_deref(), Some("witiop.api@acme.example"));
    assert_eq!(c.private_key.as_ref().unwrap().fingerprint().len(), 64);
    // PKCS#1 ("BEGIN RSA PRIVATE KEY", openssl genrsa) works as well, and is another key.
    let pkcs1 = SalesforceSettings::parse("sf", &jwt_secret(PKCS1_KEY)).unwrap();
    assert_ne!(pkcs1.connection, s.connection);

    for (missing, text) in [("private_key", "`private_key`"), ("username", "`username`")] {
        let mut v: serde_json::Value = serde_json::from_str(&jwt_secret(APP_KEY)).unwrap();
        v.as_object_mut().unwrap().remove(missing);
        let err = SalesforceSettings::parse("sf", &v.to_string()).unwrap_err();
        assert!(
            matches!(err, ConfigError::MissingKey { .. }) && err.to_string().contains(text),
            "{err}"
        );
    }
    let typo = jwt_secret(APP_KEY).replace("\"private_key\"", "\"privat_key\"");
    assert!(SalesforceSettings::parse("sf", &typo)
        .unwrap_err()
        .to_string()
        .contains("unknown key `privat_key`"));
}

#[test]
fn a_private_key_that_is_not_rsa_is_refused_without_echoing_it() {
    // An EC key (P-256), a certificate and plain text: none signs RS256.
    let ec = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQUrk8nWwtgwVDF1a\nYCUvHVZgsjUjEJcsP5rv1r5VMEahRANCAARvODyX2yDjva5AH8ez1YLbFPvhLQxS\nD4hbeKP51/fAUeGuT9wghoqf2lB2MV5wY+Z8oP/91xY6JqpeqlmKF8uW\n-----END PRIVATE KEY-----\n";
    let cert = include_str!("../../local-salesforce/src/test-keys/app.cert.pem");
    for (value, reason) in [
        (ec, "RSA"),
        (cert, "PEM private key"),
        ("not a key at all", "PEM private key"),
    ] {
        let err = SalesforceSettings::parse("sf", &jwt_secret(value))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`private_key`") && err.contains(reason),
            "{err}"
        );
        assert!(
            !err.contains("MII") && !err.contains("not a key at all"),
            "{err}"
        );
    }
}

#[test]
fn a_private_key_never_shows_in_debug_and_belongs_to_jwt_bearer_only() {
    let s = SalesforceSettings::parse("sf", &jwt_secret(APP_KEY)).unwrap();
    let printed = format!("{s:?}");
    assert!(
        !printed.contains("PRIVATE KEY") && !printed.contains("MII"),
        "{printed}"
    );
    let with_password = FULL.replace(
        "\"api_version\"",
        &format!(
            "\"private_key\": {}, \"api_version\"",
            serde_json::json!(APP_KEY)
        ),
    );
    assert!(SalesforceSettings::parse("sf", &with_password)
        .unwrap_err()
        .to_string()
        .contains("`private_key` is only used"));
}
