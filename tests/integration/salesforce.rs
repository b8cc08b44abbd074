//! The Salesforce client against the local Salesforce, with the token cache in moto.

use crate::helpers::{salesforce_client, salesforce_secret, Moto, Org, TOKENS};
use local_salesforce::Fault;
use serde::Deserialize;
use serde_json::{json, Value};
use witiop_salesforce::salesforce::error::{ErrorCode, Wait};
use witiop_salesforce::salesforce::escape::{soql_like_suffix, soql_literal};
use witiop_salesforce::salesforce::{
    ErrorClass, RefId, SalesforceClient, SalesforceError, Subrequest,
};

async fn env() -> Org {
    crate::helpers::org(json!({})).await
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct Row {
    id: String,
    #[serde(default)]
    last_name: Option<String>,
}

async fn stored_token(moto: &Moto) -> Value {
    let text = moto
        .secrets()
        .get_secret_value()
        .secret_id(TOKENS)
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The error `soql` meets.
async fn query_error(client: &SalesforceClient, soql: &str) -> SalesforceError {
    client.query::<Row>(soql).await.unwrap_err()
}

#[tokio::test]
async fn logs_in_once_stores_the_token_and_a_second_instance_reuses_it() {
    let e = env().await;
    let client = e.client();
    let users: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(e.sf.counters().logins, 1);
    let stored = stored_token(&e.moto).await;
    assert_eq!(stored["instance_url"], e.sf.url);
    assert!(stored["access_token"].as_str().unwrap().starts_with("00D"));

    let second = e.client();
    let _: Vec<Row> = second.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(
        e.sf.counters().logins,
        1,
        "the second instance must reuse the stored token"
    );
    assert_eq!(
        client.api_calls() + second.api_calls(),
        e.sf.counters().api_calls
    );
    assert_eq!(client.api_usage().unwrap().0, 1);
}

/// An org that sends more than `api-usage` (a connected app's own quota,
/// the month's bursts) still moves the usage the worker reports.
#[tokio::test]
async fn the_allowance_is_read_from_every_form_of_the_limit_header() {
    let e = env().await;
    let client = e.client();
    for (form, expected_used) in [
        (local_salesforce::LimitInfoForm::PerApp, 1),
        (local_salesforce::LimitInfoForm::Bursts, 2),
        (local_salesforce::LimitInfoForm::ApiUsage, 3),
    ] {
        e.sf.set_limit_info_form(form);
        let _: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();
        assert_eq!(
            client.api_usage(),
            Some((expected_used, 100_000)),
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn expired_token_means_one_login_and_the_secret_updated() {
    let e = env().await;
    let client = std::sync::Arc::new(e.client());
    let _: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();
    let before = stored_token(&e.moto).await;
    e.sf.expire_tokens();
    // Concurrent calls after the expiry share a single login.
    let calls = (0..8).map(|_| {
        let c = client.clone();
        async move { c.query::<Row>("SELECT Id FROM User").await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(e.sf.counters().logins, 2);
    let after = stored_token(&e.moto).await;
    assert_ne!(before["access_token"], after["access_token"]);
}

#[tokio::test]
async fn a_token_renewed_by_another_instance_is_adopted_without_logging_in() {
    let e = env().await;
    let a = e.client();
    let b = e.client();
    let _: Vec<Row> = a.query("SELECT Id FROM User").await.unwrap();
    let _: Vec<Row> = b.query("SELECT Id FROM User").await.unwrap();
    e.sf.expire_tokens();
    let _: Vec<Row> = a.query("SELECT Id FROM User").await.unwrap(); // logs in, stores
    let _: Vec<Row> = b.query("SELECT Id FROM User").await.unwrap(); // adopts a's token
    assert_eq!(e.sf.counters().logins, 2);
    assert_eq!(b.logins(), 0);
}

#[tokio::test]
async fn transient_errors_are_retried_limits_are_not() {
    let e = env().await;
    let client = e.client();
    let _: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();

    e.sf.inject(Fault::Unavailable, 1);
    e.sf.inject(Fault::UnavailableHtml, 1);
    e.sf.inject(Fault::RowLock, 1);
    let users: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(e.sf.counters().faults_served, 3);

    e.sf.inject(Fault::UnavailableHtml, 4);
    let err = query_error(&client, "SELECT Id FROM User").await;
    assert!(
        matches!(err, SalesforceError::NonJson { status: 503, .. }),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::RetryNow);
    assert_eq!(e.sf.counters().faults_served, 3 + 4, "bounded: 4 attempts");
    e.sf.reset_counters();

    e.sf.inject(Fault::LimitExceeded, 1);
    let err = query_error(&client, "SELECT Id FROM User").await;
    assert_eq!(err.code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(err.class(), ErrorClass::RetryLater(Wait::ForAllowance));
    assert_eq!(
        e.sf.counters().faults_served,
        1,
        "no hot retry on the limit"
    );
}

#[tokio::test]
async fn writes_are_not_replayed_after_an_ambiguous_failure() {
    let e = env().await;
    let client = e.client();
    // 503 JSON means Salesforce did nothing: the create is retried and succeeds once.
    e.sf.inject(Fault::Unavailable, 1);
    let results = client
        .create_collection(
            &[json!({"attributes": {"type": "Contact"}, "LastName": "Once"})],
            true,
        )
        .await
        .unwrap();
    assert!(results[0].success);
    assert_eq!(e.sf.records("Contact").len(), 1);
}

#[tokio::test]
async fn injection_attempts_return_the_right_rows() {
    let e = env().await;
    let client = e.client();
    let names = [
        "O'Brien",
        r"Back\slash",
        "100%_done",
        "+39 333",
        "Émilie 😀",
        "x' OR LastName != 'y",
    ];
    for n in names {
        e.sf.insert("Contact", json!({"LastName": n})).unwrap();
    }
    e.sf.insert("Contact", json!({"LastName": "100Xydone"}))
        .unwrap();
    for n in names {
        let rows: Vec<Row> = client
            .query(&format!(
                "SELECT Id, LastName FROM Contact WHERE LastName = {}",
                soql_literal(n)
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{n}");
        assert_eq!(rows[0].last_name.as_deref(), Some(n));
    }
    // LIKE takes % and _ literally once escaped.
    let rows: Vec<Row> = client
        .query(&format!(
            "SELECT Id FROM Contact WHERE LastName LIKE {}",
            soql_like_suffix("%_done")
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn query_pages_are_followed() {
    let e = env().await;
    let client = e.client();
    for i in 0..2100 {
        e.sf.insert("Contact", json!({"LastName": format!("C{i}")}))
            .unwrap();
    }
    let rows: Vec<Row> = client.query("SELECT Id FROM Contact").await.unwrap();
    assert_eq!(rows.len(), 2100);
    assert_eq!(client.api_calls(), 2, "two pages, two calls");
}

#[tokio::test]
async fn errors_say_field_and_code() {
    let e = env().await;
    let client = e.client();
    let create = |record: serde_json::Value| {
        let client = &client;
        async move {
            client
                .create_collection(&[record], true)
                .await?
                .remove(0)
                .into_id()
        }
    };
    let err = create(json!({"attributes": {"type": "Contact"}, "FirstName": "No last name"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("REQUIRED_FIELD_MISSING"));
    assert!(err.to_string().contains("LastName"), "{err}");
    let err = query_error(&client, "SELECT Id, Nope FROM Contact").await;
    assert_eq!(err.code(), Some("INVALID_FIELD"));
    let err = query_error(&client, "SELECT Id FROM Contact WHERE").await;
    assert_eq!(err.code(), Some("MALFORMED_QUERY"));
    let err = create(json!({"attributes": {"type": "CaseComment"}, "ParentId": "500Wt0000000001AAA", "CommentBody": "x", "CreatedDate": "2026-01-01T00:00:00Z"}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
}

/// A Contact, then a Case for it by reference.
fn contact_and_case(path: &str, last_name: &str, subject: &str) -> Vec<Subrequest> {
    vec![
        Subrequest::create(
            path,
            RefId::named("contact"),
            "Contact",
            json!({ "LastName": last_name }),
        ),
        Subrequest::create(
            path,
            RefId::named("case"),
            "Case",
            json!({"Subject": subject, "ContactId": "@{contact.id}"}),
        ),
    ]
}

#[tokio::test]
async fn composite_references_and_all_or_none() {
    let e = env().await;
    let client = e.client();
    let p = client.data_path();
    let mut ok = contact_and_case(&p, "C.", "s");
    ok.extend([
        Subrequest::collection(
            &p,
            RefId::named("comments"),
            vec![
                json!({"attributes": {"type": "CaseComment"}, "ParentId": "@{case.id}", "CommentBody": "one"}),
                json!({"attributes": {"type": "CaseComment"}, "ParentId": "@{case.id}", "CommentBody": "two"}),
            ],
        ),
        // A reference in a URL is found before the URL is decoded: it must
        // travel unencoded.
        Subrequest::query_with_references(
            &p,
            RefId::named("number"),
            "SELECT CaseNumber FROM Case WHERE Id = '@{case.id}'",
        ),
    ]);
    let out = client.composite(&ok, true).await.unwrap();
    assert!(out.iter().all(|r| r.error().is_none()), "{out:?}");
    assert_eq!(e.sf.records("CaseComment").len(), 2);
    assert_eq!(e.sf.counters().api_calls, 1, "a composite is one API call");
    let case = &e.sf.records("Case")[0];
    assert_eq!(case["ContactId"], e.sf.records("Contact")[0]["Id"]);

    let failing = contact_and_case(&p, "Rolled back", &"x".repeat(256));
    let out = client.composite(&failing, true).await.unwrap();
    assert_eq!(out[1].error().unwrap().code(), Some("STRING_TOO_LONG"));
    assert_eq!(out[0].error().unwrap().code(), Some("PROCESSING_HALTED"));
    assert_eq!(
        e.sf.records("Contact").len(),
        1,
        "allOrNone rolled the contact back"
    );
}

#[tokio::test]
async fn collections_limits_and_per_record_errors() {
    let e = env().await;
    let client = e.client();
    let too_many: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("c{i}")}))
        .collect();
    let err = client.create_collection(&too_many, true).await.unwrap_err();
    assert_eq!(err.code(), Some("EXCEEDED_ID_LIMIT"));
    let mixed = vec![
        json!({"attributes": {"type": "Contact"}, "LastName": "fine"}),
        json!({"attributes": {"type": "Contact"}, "FirstName": "no last name"}),
    ];
    let results = client.create_collection(&mixed, true).await.unwrap();
    assert_eq!(results[0].errors[0].code, ErrorCode::AllOrNoneRolledBack);
    assert_eq!(results[1].errors[0].code.as_str(), "REQUIRED_FIELD_MISSING");
    assert!(e.sf.records("Contact").is_empty());
}

#[tokio::test]
async fn content_version_is_uploaded_as_multipart() {
    let e = env().await;
    let client = e.client();
    let case = e.sf.insert("Case", json!({"Subject": "files"})).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let entity = json!({"Title": "invoice.pdf", "PathOnClient": "invoice.pdf", "FirstPublishLocationId": case});
    let d = data.clone();
    let length = data.len() as u64;
    let id = client
        .upload_content_version(
            &entity,
            "invoice.pdf",
            "application/pdf",
            length,
            move || reqwest::Body::from(d.clone()),
        )
        .await
        .unwrap();
    assert!(id.starts_with("068"));
    assert_eq!(e.sf.blob(&id).unwrap(), data);
}

#[tokio::test]
async fn login_failures_name_flow_and_url_never_secrets() {
    let e = env().await;
    let wrong = salesforce_secret(&e.sf.url, json!({"password": "wrong-password-123"}));
    let client = salesforce_client(&e.moto, &wrong, TOKENS);
    let err = query_error(&client, "SELECT Id FROM User").await;
    let text = err.to_string();
    assert!(
        text.contains("password flow")
            && text.contains(&e.sf.url)
            && text.contains("invalid_grant"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-password-123") && !text.contains(local_salesforce::SECURITY_TOKEN)
    );
    // Refused credentials wait for a fix instead of parking every conversation.
    assert_eq!(err.class(), ErrorClass::RetryLater(Wait::Backoff));

    let unreachable = salesforce_secret(
        &format!("http://127.0.0.1:{}", crate::helpers::free_port()),
        json!({}),
    );
    let err = salesforce_client(&e.moto, &unreachable, "other-token-secret")
        .query::<Row>("SELECT Id FROM User")
        .await;
    // No such token secret and no server: transient either way, never a panic.
    assert!(err.is_err());
}

#[tokio::test]
async fn client_credentials_flow() {
    let e = env().await;
    let secret = json!({
        "auth_flow": "client_credentials",
        "login_url": e.sf.url,
        "consumer_key": local_salesforce::CONSUMER_KEY,
        "consumer_secret": local_salesforce::CONSUMER_SECRET,
    });
    e.sf.set_password_flow(false);
    let client = salesforce_client(&e.moto, &secret, TOKENS);
    let users: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(users[0].id, e.sf.api_user_id);
    let blocked = salesforce_client(&e.moto, &e.secret, "blocked-token");
    e.moto.secret("blocked-token", "{}").await.unwrap();
    let err = query_error(&blocked, "SELECT Id FROM User").await;
    assert_eq!(err.code(), Some("invalid_grant"));
}

#[tokio::test]
async fn unknown_api_version_is_404() {
    let e = env().await;
    let secret = salesforce_secret(&e.sf.url, json!({"api_version": "99.0"}));
    let err = salesforce_client(&e.moto, &secret, TOKENS)
        .query::<Row>("SELECT Id FROM User")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SalesforceError::Api { status: 404, .. }),
        "{err}"
    );
}

/// The secret of the JWT bearer flow for `org`, signed with `private_key`.
fn jwt_secret(org: &Org, private_key: &str, extra: Value) -> Value {
    let mut secret = json!({
        "auth_flow": "jwt_bearer",
        "login_url": org.sf.url,
        "consumer_key": local_salesforce::CONSUMER_KEY,
        "username": local_salesforce::API_USERNAME,
        "private_key": private_key,
    });
    if let (Some(base), Value::Object(extra)) = (secret.as_object_mut(), extra) {
        base.extend(extra);
    }
    secret
}

/// An org whose Connected App holds the test certificate and pre-authorises
/// the API user, with the password flow blocked as in a new org.
async fn jwt_org() -> Org {
    let e = env().await;
    e.sf.set_jwt_certificate(local_salesforce::test_keys::APP_CERTIFICATE)
        .unwrap();
    e.sf.pre_authorise(local_salesforce::API_USERNAME);
    e.sf.set_password_flow(false);
    e
}

#[tokio::test]
async fn jwt_bearer_logs_in_without_password_or_consumer_secret_and_queries() {
    let e = jwt_org().await;
    let secret = jwt_secret(&e, local_salesforce::test_keys::APP_PRIVATE_KEY, json!({}));
    let client = salesforce_client(&e.moto, &secret, TOKENS);
    let users: Vec<Row> = client.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(users[0].id, e.sf.api_user_id);
    assert_eq!(e.sf.counters().logins, 1);
    // A second instance with the same key reuses the stored token.
    let second = salesforce_client(&e.moto, &secret, TOKENS);
    let _: Vec<Row> = second.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(e.sf.counters().logins, 1);
}

#[tokio::test]
async fn a_token_stored_by_another_key_is_not_used() {
    let e = jwt_org().await;
    let first = jwt_secret(&e, local_salesforce::test_keys::APP_PRIVATE_KEY, json!({}));
    let _: Vec<Row> = salesforce_client(&e.moto, &first, TOKENS)
        .query("SELECT Id FROM User")
        .await
        .unwrap();
    // The same app and user with another key: the cached token is not
    // theirs, so the client logs in (and Salesforce refuses the key).
    let other = jwt_secret(
        &e,
        local_salesforce::test_keys::OTHER_PRIVATE_KEY,
        json!({}),
    );
    let err = query_error(
        &salesforce_client(&e.moto, &other, TOKENS),
        "SELECT Id FROM User",
    )
    .await;
    assert_eq!(err.code(), Some("invalid_grant"), "{err}");
    assert_eq!(e.sf.counters().logins, 1);
}

/// Each reason Salesforce refuses an assertion for, as the worker reports it.
#[tokio::test]
async fn jwt_bearer_refusals_name_the_flow_and_the_oauth_error() {
    use local_salesforce::test_keys::{APP_PRIVATE_KEY, OTHER_PRIVATE_KEY};
    type Setup = fn(&local_salesforce::LocalSalesforce);
    let cases: [(&str, &str, Value, Setup, &str, &str); 5] = [
        (
            "a key whose certificate the app does not hold",
            OTHER_PRIVATE_KEY,
            json!({}),
            |_| {},
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "a production assertion for a sandbox",
            APP_PRIVATE_KEY,
            json!({}),
            |sf| sf.set_jwt_audience("https://test.salesforce.com"),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            "an assertion expired on arrival (Salesforce's clock 5 minutes ahead)",
            APP_PRIVATE_KEY,
            json!({}),
            |sf| sf.set_clock_ahead(std::time::Duration::from_secs(300)),
            "invalid_grant",
            "expired authorization code",
        ),
        (
            "an issuer that is not the app's consumer key",
            APP_PRIVATE_KEY,
            json!({"consumer_key": "3MVG9-another-app"}),
            |_| {},
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            "a user the admin has not pre-authorised",
            APP_PRIVATE_KEY,
            json!({"username": "someone.else@acme.example"}),
            |sf| {
                sf.add_user(
                    "someone.else@acme.example",
                    "someone.else@acme.example",
                    "Someone",
                    "Else",
                    true,
                );
            },
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
    ];
    for (case, key, extra, setup, code, description) in cases {
        let e = jwt_org().await;
        setup(&e.sf);
        let secret = jwt_secret(&e, key, extra);
        let err = query_error(
            &salesforce_client(&e.moto, &secret, TOKENS),
            "SELECT Id FROM User",
        )
        .await;
        let text = err.to_string();
        assert!(
            matches!(&err, SalesforceError::Login { flow: "jwt_bearer", error, description: d, status: 400, .. }
                if error == code && d == description),
            "{case}: {text}"
        );
        assert!(
            text.contains("jwt_bearer flow") && text.contains(&e.sf.url),
            "{case}: {text}"
        );
        // Neither the key nor the signed assertion reaches the error.
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("eyJ"),
            "{case}: {text}"
        );
        assert_eq!(err.class(), ErrorClass::RetryLater(Wait::Backoff), "{case}");
        assert_eq!(e.sf.counters().logins, 0, "{case}");
    }
}

/// The control surface sets the flow up as the in-process methods do, and
/// assertions the worker never makes are refused as Salesforce would.
#[tokio::test]
async fn jwt_bearer_set_up_over_http_and_assertions_the_worker_never_signs() {
    use witiop_salesforce::config::PrivateKey;
    use witiop_salesforce::salesforce::assertion::{sign, Claims};
    let e = env().await;
    let http = reqwest::Client::new();
    let settings = |body: Value| {
        http.post(format!("{}/__control/settings", e.sf.url))
            .json(&body)
            .send()
    };
    let refused = settings(json!({"jwt_certificate": "not a certificate"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let set = settings(json!({
        "jwt_certificate": local_salesforce::test_keys::APP_CERTIFICATE,
        "pre_authorise": [local_salesforce::API_USERNAME],
    }))
    .await
    .unwrap();
    assert_eq!(set.status(), 204);

    let key = PrivateKey::from_pem(local_salesforce::test_keys::APP_PRIVATE_KEY).unwrap();
    let now = chrono::Utc::now().timestamp();
    let token = |assertion: String| {
        http.post(format!("{}/services/oauth2/token", e.sf.url))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
    };
    let good = Claims::new(
        local_salesforce::CONSUMER_KEY,
        local_salesforce::API_USERNAME,
        &e.sf.url,
        now,
    );
    let answer = token(sign(&good, &key).unwrap()).await.unwrap();
    assert_eq!(answer.status(), 200);

    let too_long = Claims {
        exp: now + 3600,
        ..Claims::new(
            local_salesforce::CONSUMER_KEY,
            local_salesforce::API_USERNAME,
            &e.sf.url,
            now,
        )
    };
    let signed = sign(&good, &key).unwrap();
    let (_, signature) = signed.rsplit_once('.').unwrap();
    let unsigned_header = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{signature}",
            b64.encode(br#"{"alg":"none"}"#),
            b64.encode(serde_json::to_vec(&good).unwrap())
        )
    };
    for (case, assertion) in [
        ("an expiry beyond 3 minutes", sign(&too_long, &key).unwrap()),
        ("an algorithm other than RS256", unsigned_header),
        ("claims changed after signing", {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let later = Claims {
                exp: good.exp + 1,
                ..Claims::new(
                    local_salesforce::CONSUMER_KEY,
                    local_salesforce::API_USERNAME,
                    &e.sf.url,
                    now,
                )
            };
            let (header, _) = signed.split_once('.').unwrap();
            format!(
                "{header}.{}.{signature}",
                b64.encode(serde_json::to_vec(&later).unwrap())
            )
        }),
        ("no assertion at all", String::new()),
    ] {
        let answer = token(assertion).await.unwrap();
        assert_eq!(answer.status(), 400, "{case}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "invalid_grant", "error_description": "invalid assertion"}),
            "{case}"
        );
    }
    assert_eq!(e.sf.counters().logins, 1);
}
