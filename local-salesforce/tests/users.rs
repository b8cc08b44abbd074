//! User.UserType: the licence of a user, filterable in SOQL.

mod common;

use common::Org;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn user_type_defaults_to_standard_and_filters() {
    let org = Org::start().await;
    let agent = org.add_agent();
    let portal = org.sf.add_user_of_type(
        "agent@portal.acme",
        "agent@acme.example",
        "A",
        "Gent",
        true,
        "PowerCustomerSuccess",
    );
    org.sf.add_user_of_type(
        "chatter@acme",
        "agent@acme.example",
        "C",
        "Hat",
        true,
        "CsnOnly",
    );
    let all = org
        .query("SELECT Id, UserType FROM User WHERE Email = 'agent@acme.example'")
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["totalSize"], 3);
    let standard = org
        .query("SELECT Id FROM User WHERE Email = 'agent@acme.example' AND IsActive = true AND UserType = 'Standard'")
        .await;
    assert_eq!(standard.status, StatusCode::OK, "{}", standard.body);
    let ids: Vec<&Value> = standard.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["Id"])
        .collect();
    assert_eq!(ids, vec![&Value::String(agent)]);
    let others = org
        .query("SELECT Id FROM User WHERE UserType != 'Standard' ORDER BY Id")
        .await;
    assert_eq!(others.body["totalSize"], 2);
    assert_eq!(others.body["records"][0]["Id"], portal.as_str());
    // The API user and every seeded user hold a full licence.
    assert!(org
        .sf
        .records("User")
        .iter()
        .filter(|u| u["Username"] == local_salesforce::API_USERNAME)
        .all(|u| u["UserType"] == "Standard"));
    // Read-only: the API cannot set it.
    let c = org
        .post(
            "sobjects/Contact",
            serde_json::json!({"LastName": "X", "UserType": "Standard"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
#[should_panic(expected = "unknown UserType")]
async fn unknown_user_type_is_refused() {
    let org = Org::start().await;
    org.sf
        .add_user_of_type("x@acme", "x@acme", "X", "Y", true, "Portal");
}
