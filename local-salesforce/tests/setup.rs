//! The setup objects say what the org enforces: permission sets and their
//! assignments follow the audit-field setting, the rules follow their
//! switches, and none of them can be written.

mod common;

use common::{code, Org};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn records(body: &Value) -> &Vec<Value> {
    body["records"].as_array().unwrap()
}

/// How many permission sets granting Create Audit Fields `user` holds.
async fn audit_sets(org: &Org, user: &str) -> usize {
    let q =
        format!("SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = '{user}'");
    let assigned = org.query(&q).await.body;
    let ids: Vec<String> = records(&assigned)
        .iter()
        .map(|r| format!("'{}'", r["PermissionSetId"].as_str().unwrap()))
        .collect();
    let sets = org
        .query(&format!(
            "SELECT Name, IsOwnedByProfile, PermissionsCreateAuditFields FROM PermissionSet WHERE Id IN ({}) AND PermissionsCreateAuditFields = true",
            ids.join(", ")
        ))
        .await
        .body;
    records(&sets).len()
}

async fn active(org: &Org, q: &str) -> usize {
    let r = org.query(q).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    records(&r.body).len()
}

#[tokio::test]
async fn the_api_users_permissions_follow_the_audit_field_setting() {
    let org = Org::start().await;
    let api = &org.sf.api_user_id;
    let user = org
        .query(&format!(
            "SELECT Id, IsActive, UserType, ProfileId FROM User WHERE Id = '{api}'"
        ))
        .await
        .body;
    let profile = records(&user)[0]["ProfileId"].as_str().unwrap().to_owned();
    let named = org
        .query(&format!("SELECT Name FROM Profile WHERE Id = '{profile}'"))
        .await
        .body;
    assert_eq!(records(&named)[0]["Name"], "System Administrator");

    assert_eq!(audit_sets(&org, api).await, 0);
    org.sf.set_audit_fields(true);
    assert_eq!(audit_sets(&org, api).await, 1);
}

#[tokio::test]
async fn rules_are_listed_active_or_not() {
    let org = Org::start().await;
    let assignment =
        "SELECT Id, Name FROM AssignmentRule WHERE SobjectType = 'Case' AND Active = true";
    let duplicate =
        "SELECT Id, DeveloperName FROM DuplicateRule WHERE SobjectType = 'Contact' AND IsActive = true";
    assert_eq!(active(&org, assignment).await, 0);
    assert_eq!(active(&org, duplicate).await, 0);
    org.sf
        .set_case_assignment_rule(Some(org.sf.api_user_id.clone()));
    org.sf.set_contact_duplicate_rule(true);
    assert_eq!(active(&org, assignment).await, 1);
    assert_eq!(active(&org, duplicate).await, 1);

    // The reads a client makes to learn whether the org would re-assign a
    // Case or hold up a Contact, field for field.
    let r = org
        .query("SELECT Id, Name, Active, SobjectType FROM AssignmentRule WHERE SobjectType = 'Case' AND Active = true")
        .await;
    let rule = &records(&r.body)[0];
    assert_eq!(rule["Active"], true);
    assert_eq!(rule["SobjectType"], "Case");
    assert!(rule["Id"].as_str().unwrap().starts_with("01Q"));
    let r = org
        .query("SELECT Id, DeveloperName, MasterLabel, IsActive, SobjectType, SobjectSubtype, Language, NamespacePrefix FROM DuplicateRule WHERE SobjectType = 'Contact' AND IsActive = true")
        .await;
    let rule = &records(&r.body)[0];
    assert_eq!(rule["DeveloperName"], "Standard_Contact_Duplicate_Rule");
    assert_eq!(rule["IsActive"], true);
    assert!(rule["NamespacePrefix"].is_null());
    assert!(rule["Id"].as_str().unwrap().starts_with("0Bm"));
    // Switched off again, they read inactive.
    org.sf.set_case_assignment_rule(None);
    org.sf.set_contact_duplicate_rule(false);
    assert_eq!(active(&org, assignment).await, 0);
    assert_eq!(active(&org, duplicate).await, 0);

    // Strict as everywhere: an unknown column is refused.
    let r = org.query("SELECT Id, Nope FROM DuplicateRule").await;
    assert_eq!(code(&r.body), "INVALID_FIELD");
    // Settings are not records the API writes.
    let r = org
        .post("sobjects/AssignmentRule", json!({"Name": "Mine"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
