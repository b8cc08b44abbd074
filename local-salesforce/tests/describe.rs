//! Describe and the versions list: what a client learns about the org
//! matches what the org enforces on save.

mod common;

use common::{code, Org};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn field<'a>(describe: &'a Value, name: &str) -> &'a Value {
    describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {}", describe["name"]))
}

fn values(field: &Value) -> Vec<&str> {
    field["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_object_of_the_integration_is_described() {
    let org = Org::start().await;
    for (object, prefix, createable) in [
        ("Case", "500", true),
        ("CaseComment", "00a", true),
        ("Contact", "003", true),
        ("Account", "001", true),
        ("User", "005", false),
        ("ContentVersion", "068", true),
    ] {
        let r = org.get(&format!("sobjects/{object}/describe")).await;
        assert_eq!(r.status, StatusCode::OK, "{object}: {}", r.body);
        assert_eq!(r.body["name"], object);
        assert_eq!(r.body["keyPrefix"], prefix);
        assert_eq!(r.body["createable"], createable, "{object}");
        assert_eq!(r.body["queryable"], true);
        assert!(r.headers.contains_key("sforce-limit-info"));
        for f in r.body["fields"].as_array().unwrap() {
            for key in [
                "name",
                "label",
                "type",
                "length",
                "createable",
                "updateable",
                "nillable",
                "unique",
                "externalId",
                "caseSensitive",
                "picklistValues",
                "restrictedPicklist",
            ] {
                assert!(f.get(key).is_some(), "{object}.{}: no {key}", f["name"]);
            }
        }
    }
    // Any case names the object, as the rest of the API accepts.
    let r = org.get("sobjects/case/describe").await;
    assert_eq!(r.body["name"], "Case");
    let r = org.get("sobjects/Opportunity/describe").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(code(&r.body), "NOT_FOUND");
}

#[tokio::test]
async fn fields_are_described_as_they_save() {
    let org = Org::start().await;
    let case = org.get("sobjects/Case/describe").await.body;
    let subject = field(&case, "Subject");
    assert_eq!(subject["type"], "string");
    assert_eq!(subject["length"], 255);
    assert_eq!(subject["createable"], true);
    assert_eq!(subject["nillable"], true);
    let number = field(&case, "CaseNumber");
    assert_eq!(number["createable"], false);
    assert_eq!(field(&case, "Description")["type"], "textarea");
    let owner = field(&case, "OwnerId");
    assert_eq!(owner["type"], "reference");
    assert_eq!(owner["referenceTo"], json!(["User"]));
    assert_eq!(owner["label"], "Owner ID");
    assert_eq!(field(&case, "Id")["type"], "id");
    assert_eq!(field(&case, "CreatedDate")["type"], "datetime");
    let contact = org.get("sobjects/Contact/describe").await.body;
    assert_eq!(field(&contact, "LastName")["nillable"], false);
    assert_eq!(field(&contact, "Email")["type"], "email");
    assert_eq!(field(&contact, "MobilePhone")["type"], "phone");
    assert_eq!(
        field(&contact, "AccountId")["referenceTo"],
        json!(["Account"])
    );
    let comment = org.get("sobjects/CaseComment/describe").await.body;
    assert_eq!(field(&comment, "IsPublished")["type"], "boolean");
    assert_eq!(field(&comment, "ParentId")["updateable"], false);

    // Audit fields are createable exactly while the org lets the API set them.
    assert_eq!(field(&case, "CreatedDate")["createable"], false);
    org.sf.set_audit_fields(true);
    let case = org.get("sobjects/Case/describe").await.body;
    assert_eq!(field(&case, "CreatedDate")["createable"], true);
    assert_eq!(field(&case, "CreatedDate")["updateable"], false);
}

#[tokio::test]
async fn external_ids_are_unique_case_insensitive_text() {
    let org = Org::start().await;
    org.sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    let case = org.get("sobjects/Case/describe").await.body;
    let ext = field(&case, "WitiOp_Conversation_Id__c");
    assert_eq!(ext["type"], "string");
    assert_eq!(ext["externalId"], true);
    assert_eq!(ext["unique"], true);
    assert_eq!(ext["caseSensitive"], false);
    assert_eq!(ext["custom"], true);
    assert_eq!(field(&case, "Subject")["externalId"], false);
}

#[tokio::test]
async fn picklists_list_their_values_and_whether_they_are_restricted() {
    let org = Org::start().await;
    let case = org.get("sobjects/Case/describe").await.body;
    let origin = field(&case, "Origin");
    assert_eq!(origin["type"], "picklist");
    assert_eq!(values(origin), ["Phone", "Email", "Web"]);
    assert_eq!(origin["restrictedPicklist"], false);
    let status = field(&case, "Status");
    let new = &status["picklistValues"][0];
    assert_eq!(
        (new["value"].as_str(), new["defaultValue"].as_bool()),
        (Some("New"), Some(true))
    );

    // An admin's value set, unrestricted: listed, and other text still saves.
    org.sf
        .set_picklist("Case", "Origin", &["Phone", "WhatsApp"], false);
    let case = org.get("sobjects/Case/describe").await.body;
    assert_eq!(values(field(&case, "Origin")), ["Phone", "WhatsApp"]);
    let r = org.post("sobjects/Case", json!({"Origin": "Fax"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Restricted: described so, and only its values save.
    org.sf
        .set_picklist("Case", "Origin", &["Phone", "WhatsApp"], true);
    let case = org.get("sobjects/Case/describe").await.body;
    assert_eq!(field(&case, "Origin")["restrictedPicklist"], true);
    let r = org.post("sobjects/Case", json!({"Origin": "Fax"})).await;
    assert_eq!(code(&r.body), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    let r = org
        .post("sobjects/Case", json!({"Origin": "WhatsApp"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let user = org.get("sobjects/User/describe").await.body;
    assert!(values(field(&user, "UserType")).contains(&"Standard"));
}

#[tokio::test]
async fn describe_needs_a_session_and_the_versions_list_does_not() {
    let org = Org::start().await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{}/services/data/v62.0/sobjects/Case/describe",
            org.sf.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(format!(
            "{}/services/data/v99.0/sobjects/Case/describe",
            org.sf.url
        ))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    for path in ["/services/data", "/services/data/"] {
        let r = http
            .get(format!("{}{path}", org.sf.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let list: Value = r.json().await.unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list[0]["version"], "31.0");
        let v62 = list.iter().find(|v| v["version"] == "62.0").unwrap();
        assert_eq!(v62["url"], "/services/data/v62.0");
        assert_eq!(v62["label"], "Winter '25");
    }
}
