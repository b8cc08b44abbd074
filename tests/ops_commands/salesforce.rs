//! `make check-salesforce` against the local Salesforce.

use std::time::Duration;

use local_salesforce::LocalSalesforce;
use proof::operator::Run;
use serde_json::{json, Value};

use crate::harness::Ops;

/// `make check-salesforce` with `secret` as the stack's Salesforce secret.
async fn check_salesforce(o: &Ops, secret: Value, args: &[&str]) -> Run {
    o.moto
        .put_secret("salesforce", &secret.to_string())
        .await
        .unwrap();
    o.ops("check-salesforce", args, &[]).await
}

/// The secrets a check must never print.
pub const SECRETS: [&str; 3] = [
    local_salesforce::API_PASSWORD,
    local_salesforce::SECURITY_TOKEN,
    local_salesforce::CONSUMER_SECRET,
];

/// An org set up as the README asks, and the secret that matches it.
fn set_up_org(sf: &LocalSalesforce) -> Value {
    sf.set_api_limit(15_000);
    sf.set_audit_fields(true);
    sf.seed_example_users();
    sf.set_picklist(
        "Case",
        "Origin",
        &["Phone", "Email", "Web", "WhatsApp"],
        true,
    );
    sf.restrict_picklist("Case", "Priority", &["High", "Medium", "Low"]);
    sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    let account = sf
        .insert("Account", json!({"Name": "WhatsApp customers"}))
        .unwrap();
    sf.secret(json!({
        "set_audit_fields": true,
        "customer_comment_username": local_salesforce::EXAMPLE_CUSTOMER_USERNAME,
        "default_owner_username": "agent.demo@acme.example.crm",
        "case_origin": "WhatsApp",
        "case_external_id_field": "WitiOp_Conversation_Id__c",
        "contact_account_id": account,
        "case_fields": {"Priority": "High", "Status": "Working"},
    }))
}

#[tokio::test]
async fn check_salesforce_passes_an_org_set_up_as_the_readme_asks() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();
    let secret = set_up_org(&sf);
    check_salesforce(&o, secret.clone(), &[])
        .await
        .succeeds()
        .says(&[
            "✓ login: password flow as witiop.api@acme.example; instance http://127.0.0.1",
            "✓ api_version: v62.0 is served",
            "✓ audit fields: the API user may set CreatedDate and CreatedById (through permission set",
            "✓ access Case: read and create",
            "✓ access CaseComment: read and create",
            "✓ access Contact: read and create",
            "✓ customer_comment_username: witiop.customer@acme.example is active, full licence",
            "✓ default_owner_username: agent.demo@acme.example.crm is active, full licence",
            "✓ case_origin: 'WhatsApp' is a Case Origin value",
            "✓ case_external_id_field: Case.WitiOp_Conversation_Id__c is a unique External ID text field",
            "✓ contact_account_id: Account 'WhatsApp customers'",
            "✓ case_fields.Priority: createable picklist, value accepted",
            "✓ case_fields.Status: createable picklist, value accepted",
            "✓ Case assignment rule: none active",
            "✓ Batch writes: one Composite per batch, Sforce-Auto-Assign: FALSE on each",
            "✓ Contact duplicate rules: none active",
            "✓ API usage: DailyApiRequests: 14,9",
            "0 to fix, 0 to read. Nothing was written.",
        ])
        .never_says(&SECRETS)
        .never_says(&["✗"]);

    // --json: the same checklist, alone on stdout, for machines.
    let run = check_salesforce(&o, secret, &["--json"]).await;
    run.succeeds();
    let json: Value = serde_json::Deserializer::from_str(&run.out)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(json["ok"], true, "{json}");
    let checks = json["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{json}");
    assert!(checks.iter().any(|c| c["check"] == "API usage"));

    // Client credentials, after the password flow's retirement.
    sf.set_password_flow(false);
    check_salesforce(
        &o,
        json!({
            "auth_flow": "client_credentials",
            "login_url": sf.url,
            "consumer_key": local_salesforce::CONSUMER_KEY,
            "consumer_secret": local_salesforce::CONSUMER_SECRET,
        }),
        &[],
    )
    .await
    .succeeds()
    .says(&["✓ login: client_credentials flow", "of 15,000 remaining"]);

    // Nothing was written: no record, no cached token.
    for object in ["Case", "Contact", "CaseComment"] {
        assert!(sf.records(object).is_empty(), "{object}");
    }
    assert_eq!(sf.records("Account").len(), 1);
}

#[tokio::test]
async fn check_salesforce_names_every_missed_step_and_what_to_do() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();
    let mut secret = set_up_org(&sf);
    // Every step of the set-up missed or undone.
    sf.set_audit_fields(false);
    sf.add_user("gone@acme.crm", "gone@acme.example", "Gone", "User", false);
    sf.add_user_of_type(
        "portal@acme.crm",
        "portal@acme.example",
        "Portal",
        "User",
        true,
        "PowerCustomerSuccess",
    );
    sf.set_object_readable("CaseComment", false);
    sf.set_object_readable("Contact", false);
    sf.set_case_assignment_rule(Some(sf.api_user_id.clone()));
    sf.set_contact_duplicate_rule(true);
    sf.use_api_calls(13_000);
    for (key, value) in [
        ("customer_comment_username", json!("gone@acme.crm")),
        ("default_owner_username", json!("portal@acme.crm")),
        ("case_origin", json!("Fax")),
        ("case_external_id_field", json!("Subject")),
        ("contact_account_id", json!("001Wt0000000zzz")),
        (
            "case_fields",
            json!({"Priority": "Urgent", "Subject": "x", "Nope__c": 1, "CaseNumber": "1"}),
        ),
    ] {
        secret[key] = value;
    }
    check_salesforce(&o, secret.clone(), &[])
        .await
        .fails()
        .says(&[
            "✓ login",
            "✗ audit fields: the API user lacks 'Set Audit Fields upon Record Creation'",
            "Setup > User Interface",
            "✓ access Case",
            "✗ access CaseComment: the API user cannot read it",
            "✗ access Contact: the API user cannot read it",
            "give the API user Read and Create on Contact",
            "✗ customer_comment_username: gone@acme.crm is inactive",
            "✗ default_owner_username: portal@acme.crm has a PowerCustomerSuccess licence",
            "✗ case_origin: 'Fax' is not among Case Origin's values (Phone, Email, Web, WhatsApp); the picklist is restricted",
            "Case Origin > Values: New, add 'Fax'",
            "✗ case_external_id_field: Case.Subject is not External ID, not Unique",
            "✗ contact_account_id: no Account 001Wt0000000zzz visible to the API user",
            "✗ case_fields.Priority: \"Urgent\": not one of the restricted picklist's values (High, Medium, Low)",
            "✗ case_fields.Subject: the worker sets this field itself",
            "✗ case_fields.Nope__c: Case has no field Nope__c the API user can see",
            "✗ case_fields.CaseNumber: Case.CaseNumber cannot be set on create by the API user",
            "! Case assignment rule: 'Standard Case Assignment' is active",
            "Sforce-Auto-Assign: FALSE",
            "! Contact duplicate rules: active: Standard_Contact_Duplicate_Rule",
            "! API usage: DailyApiRequests: 1,9",
            "over 80% used",
        ])
        .never_says(&SECRETS);

    // The customer user left out although audit fields are on; the access
    // to Case itself and to the setup objects (View Setup and
    // Configuration) taken away.
    sf.set_object_readable("Case", false);
    sf.set_object_readable("PermissionSetAssignment", false);
    let mut missing = secret.clone();
    missing
        .as_object_mut()
        .unwrap()
        .remove("customer_comment_username");
    check_salesforce(&o, missing, &[]).await.fails().says(&[
        "✗ customer_comment_username: missing, and set_audit_fields needs it",
        "✗ access Case: the API user cannot read it",
        "✗ case_origin: Case.Origin is not visible to the API user",
        "✗ audit fields: could not be read: the query answered HTTP 400 INVALID_TYPE",
        "View Setup and Configuration",
    ]);
    sf.set_object_readable("Case", true);

    // The allowance spent: every call refused, said as such.
    sf.limit_for(Duration::from_secs(60));
    check_salesforce(&o, secret.clone(), &[])
        .await
        .fails()
        .says(&["✗ API usage: every call is refused: REQUEST_LIMIT_EXCEEDED"]);

    // An API version the org does not serve.
    let mut old = set_up_org(&LocalSalesforce::start(0).await.unwrap());
    old["api_version"] = json!("99.0");
    check_salesforce(&o, old, &[]).await.fails().says(&[
        "✗ api_version: v99.0 is not served by this org (it serves v31.0 to v67.0)",
        "set api_version to \"67.0\"",
        "! audit fields: not checked",
    ]);
}

#[tokio::test]
async fn check_salesforce_says_why_a_login_is_refused() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();

    // The password flow refused (off in orgs created since Summer '23).
    sf.set_password_flow(false);
    check_salesforce(&o, sf.secret(json!({})), &[])
        .await
        .fails()
        .says(&[
            "✗ login: refused: HTTP 400 invalid_grant",
            "'Allow OAuth Username-Password Flows'",
            "External Client App",
            "! api_version: not checked: no session",
        ])
        .never_says(&SECRETS);

    // A wrong password is never printed.
    sf.set_password_flow(true);
    check_salesforce(&o, sf.secret(json!({"password": "wrong-secret"})), &[])
        .await
        .fails()
        .says(&["✗ login: refused: HTTP 400 invalid_grant", "security_token"])
        .never_says(&["wrong-secret"]);

    // Credentials never travel over plain http to a host that is not
    // loopback; an empty secret (as the stack creates it) is said.
    check_salesforce(
        &o,
        local_salesforce::secret_for("http://login.example.com", json!({})),
        &[],
    )
    .await
    .fails()
    .says(&["✗ login: login_url http://login.example.com is not https"]);
    check_salesforce(&o, json!({}), &[])
        .await
        .fails()
        .says(&["the Salesforce secret is empty"]);
    assert_eq!(sf.counters().logins, 0);

    // JWT bearer: openssl signs the assertion; the key is never printed,
    // and each refusal names what to fix.
    let jwt = |key: &str| sf.secret(json!({"auth_flow": "jwt_bearer", "private_key": key}));
    check_salesforce(&o, jwt("-----BEGIN PRIVATE KEY-----"), &[])
        .await
        .fails()
        .says(&["✗ login: private_key is not a PEM RSA private key"])
        .never_says(&["BEGIN PRIVATE KEY"]);
    sf.set_jwt_certificate(local_salesforce::test_keys::APP_CERTIFICATE)
        .unwrap();
    check_salesforce(&o, jwt(local_salesforce::test_keys::APP_PRIVATE_KEY), &[])
        .await
        .fails()
        .says(&[
            "user hasn't approved this consumer",
            "pre-authorise the API user",
        ]);
    check_salesforce(&o, jwt(local_salesforce::test_keys::OTHER_PRIVATE_KEY), &[])
        .await
        .fails()
        .says(&["invalid assertion", "not the one of private_key"])
        .never_says(&["PRIVATE KEY"]);
    sf.pre_authorise(local_salesforce::API_USERNAME);
    check_salesforce(&o, jwt(local_salesforce::test_keys::APP_PRIVATE_KEY), &[])
        .await
        .says(&[
            "✓ login: jwt_bearer flow as witiop.api@acme.example",
            "api_version",
        ])
        .never_says(&["PRIVATE KEY", "eyJ"]);
}
