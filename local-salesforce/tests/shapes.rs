//! Wire shapes: ill-typed SOQL is an error, never zero rows; every data
//! response reports the allowance; an inactive user cannot log in.

mod common;

use common::{code, Org};
use local_salesforce::LimitInfoForm;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn ill_typed_filters_are_refused() {
    let org = Org::start().await;
    let contact = org
        .sf
        .insert("Contact", json!({"LastName": "Rossi"}))
        .unwrap();
    org.sf.insert("Case", json!({"Subject": "s"})).unwrap();
    for (soql, expected) in [
        (
            "SELECT Id FROM User WHERE IsActive = 'true'",
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM User WHERE IsActive IN ('true')",
            "INVALID_FIELD",
        ),
        ("SELECT Id FROM User WHERE IsActive = 1", "INVALID_FIELD"),
        (
            "SELECT Id FROM Contact WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        (
            "SELECT Id FROM Case WHERE ContactId IN ('nope')",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD"),
        (
            "SELECT Id FROM Contact WHERE LastName = true",
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM User WHERE IsActive LIKE 'tr%'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        (
            "SELECT Id FROM User WHERE IsActive > false",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        (
            "SELECT Id FROM Case WHERE Description = 'x'",
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM Contact WHERE Description LIKE '%x%'",
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM CaseComment WHERE CommentBody LIKE '%x%'",
            "INVALID_FIELD",
        ),
        ("SELECT Id FROM Case ORDER BY Description", "INVALID_FIELD"),
        (
            "SELECT Id FROM Case WHERE CreatedDate > '2026-01-01'",
            "INVALID_FIELD",
        ),
        // Date-time literals are not in the local subset (stricter).
        (
            "SELECT Id FROM Case WHERE CreatedDate > 2026-01-01T00:00:00Z",
            "MALFORMED_QUERY",
        ),
    ] {
        let r = org.query(soql).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{soql}: {}", r.body);
        assert_eq!(code(&r.body), expected, "{soql}: {}", r.body);
    }
    let r = org
        .query("SELECT Id FROM User WHERE IsActive = 'true'")
        .await;
    assert!(r.body[0]["message"].as_str().unwrap().ends_with(
        "value of filter criterion for field 'IsActive' must be of type boolean and should not be enclosed in quotes"
    ));
    let r = org.query("SELECT Id FROM Contact WHERE Id = 'nope'").await;
    assert!(r.body[0]["message"]
        .as_str()
        .unwrap()
        .ends_with("invalid ID field: nope"));

    // Well-typed filters run; a 15-character id finds its record.
    for soql in [
        "SELECT Id FROM User WHERE IsActive = true AND UserType = 'Standard'".to_owned(),
        format!("SELECT Id FROM Contact WHERE Id = '{}'", &contact[..15]),
        format!("SELECT Id FROM Contact WHERE Id IN ('{contact}') AND LastName != null"),
        "SELECT Id, Description FROM Case WHERE ContactId = null".to_owned(),
    ] {
        let r = org.query(&soql).await;
        assert_eq!(r.status, StatusCode::OK, "{soql}: {}", r.body);
        assert_eq!(r.body["totalSize"], 1, "{soql}");
    }
}

#[tokio::test]
async fn every_data_response_reports_the_allowance() {
    let org = Org::start().await;
    let has = |headers: &reqwest::header::HeaderMap| -> bool {
        headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("api-usage=") && v.contains('/'))
    };
    let case = org.sf.insert("Case", json!({"Subject": "s"})).unwrap();
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "query?q=SELECT+Id+FROM+Case".into(), None),
        (Method::GET, "query?q=SELECT+Nope+FROM+Case".into(), None),
        (
            Method::POST,
            "sobjects/Case".into(),
            Some(json!({"Nope": 1})),
        ),
        (
            Method::PATCH,
            format!("sobjects/Case/{case}"),
            Some(json!({"Subject": "t"})),
        ),
        (Method::GET, format!("sobjects/Case/{case}"), None),
        (Method::GET, "no/such/resource".into(), None),
    ];
    for (method, path, body) in calls {
        let r = org.call(method, &path, body, &[]).await;
        assert!(has(&r.headers), "{path}: {}", r.status);
    }
    // A body that is not JSON, a bad token, an unknown version.
    let base = format!("{}/services/data", org.sf.url);
    let query = "query?q=SELECT+Id+FROM+Case";
    let raw = [
        (
            org.http
                .post(format!("{base}/v{}/sobjects/Case", common::V))
                .bearer_auth(&org.token)
                .header("content-type", "application/json")
                .body("{nope"),
            StatusCode::BAD_REQUEST,
        ),
        (
            org.http
                .get(format!("{base}/v{}/{query}", common::V))
                .bearer_auth("00Dbogus!AQnot-a-token"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            org.http
                .get(format!("{base}/v20.0/{query}"))
                .bearer_auth(&org.token),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (request, expected) in raw {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), expected);
        assert!(has(r.headers()));
    }
}

/// The header's other fields, in the page's own forms ("Limit Info
/// Header": `; `-separated, `name=used/limit`, the app's name after its
/// quota).
#[tokio::test]
async fn the_allowance_is_reported_in_salesforce_forms() {
    let org = Org::start().await;
    let header = |r: &common::Reply| r.headers["sforce-limit-info"].to_str().unwrap().to_owned();
    // Figures as N: the shape is what a client parses.
    let forms = [
        (LimitInfoForm::ApiUsage, "api-usage=N/N"),
        (
            LimitInfoForm::PerApp,
            "api-usage=N/N; per-app-api-usage=N/N(appName=WitiOp_Integration)",
        ),
        (LimitInfoForm::Bursts, "api-usage=N/N; api-bursts=N/N"),
    ];
    for (form, shape) in forms {
        org.sf.set_limit_info_form(form);
        let value = header(&org.query("SELECT Id FROM Case").await);
        let mut figures = String::new();
        for c in value.chars() {
            match (c.is_ascii_digit(), figures.ends_with('N')) {
                (true, true) => {}
                (true, false) => figures.push('N'),
                (false, _) => figures.push(c),
            }
        }
        assert_eq!(figures, shape, "{form:?}: {value}");
    }
}

/// Versions up to the newest release are served; a later one is unknown to
/// the org and answers `NOT_FOUND`, as an earlier, unsupported one does.
#[tokio::test]
async fn api_versions_up_to_the_current_release() {
    let org = Org::start().await;
    for (version, status) in [
        ("v67.0", StatusCode::OK),
        ("v62.0", StatusCode::OK),
        ("v68.0", StatusCode::NOT_FOUND),
        ("v99.0", StatusCode::NOT_FOUND),
        ("v67.1", StatusCode::NOT_FOUND),
    ] {
        let r = org
            .http
            .get(format!(
                "{}/services/data/{version}/query?q=SELECT+Id+FROM+Case",
                org.sf.url
            ))
            .bearer_auth(&org.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{version}");
        if status == StatusCode::NOT_FOUND {
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body,
                json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            );
        }
    }
}

/// A hanging org holds every call, logins included, for the stall, and
/// answers nothing useful after it.
#[tokio::test]
async fn a_hanging_org_answers_nothing_for_the_stall() {
    let org = Org::start().await;
    org.sf.hang_for(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_secs(5),
    );
    let started = std::time::Instant::now();
    let quick = org
        .http
        .get(format!(
            "{}/services/data/v{}/query?q=SELECT+Id+FROM+Case",
            org.sf.url,
            common::V
        ))
        .bearer_auth(&org.token)
        .timeout(std::time::Duration::from_millis(700))
        .send()
        .await;
    assert!(quick.unwrap_err().is_timeout());
    let login = org
        .http
        .post(format!("{}/services/oauth2/token", org.sf.url))
        .form(&[("grant_type", "password")])
        .timeout(std::time::Duration::from_millis(700))
        .send()
        .await;
    assert!(login.unwrap_err().is_timeout());
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Once the window is over, calls are answered again.
    org.sf
        .hang_for(std::time::Duration::ZERO, std::time::Duration::from_secs(5));
    assert_eq!(
        org.query("SELECT Id FROM Case").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_inactive_user_cannot_log_in() {
    let org = Org::start().await;
    for (username, active) in [("on@acme.crm", true), ("off@acme.crm", false)] {
        let r = org
            .http
            .post(format!("{}/__control/users", org.sf.url))
            .json(&json!({"username": username, "email": username, "active": active, "password": "pw"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let (status, body) = org.password_login("on@acme.crm", "pw").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = org.password_login("off@acme.crm", "pw").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "authentication failure"})
    );
}
