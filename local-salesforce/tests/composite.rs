//! Composite: subrequest headers, references anywhere in a body, nested
//! collections and references into their results, Location headers and
//! reads.

mod common;

use common::{code, sub, sub_create, sub_patch, sub_post, with_headers, Org};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A subrequest creating a Case with `subject`.
fn new_case(reference: &str, subject: &str) -> Value {
    sub_create(reference, "Case", json!({"Subject": subject}))
}

/// A Case `c` with `subject`, then a POST to `path` that may refer to it.
fn case_then(subject: &str, path: &str, body: Value) -> Value {
    json!([new_case("c", subject), sub_post("m", path, body)])
}

/// The Location of a Case, as the API writes it.
fn case_location(id: &str) -> String {
    format!("/services/data/v{}/sobjects/Case/{id}", common::V)
}

#[tokio::test]
async fn naming_an_inherited_header_fails_the_whole_request() {
    let org = Org::start().await;
    for header in ["Accept", "authorization", "CONTENT-TYPE"] {
        let bad = with_headers(new_case("bad", "s"), json!({header: "application/json"}));
        let r = org
            .composite(false, json!([new_case("ok", "fine"), bad]))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{header}");
        assert!(r.body.is_array(), "{}", r.body);
        assert_eq!(code(&r.body), "JSON_PARSER_ERROR");
        assert!(r.headers.contains_key("sforce-limit-info"));
    }
    assert!(org.sf.records("Case").is_empty(), "no subrequest ran");
    // Other headers are the subrequest's own business.
    let own = json!({"Sforce-Auto-Assign": "FALSE",
                     "Sforce-Duplicate-Rule-Header": "allowSave=true"});
    let res = org
        .composite_results(true, json!([with_headers(new_case("c", "s"), own)]))
        .await;
    assert_eq!(res[0]["httpStatusCode"], 201);
}

#[tokio::test]
async fn references_resolve_inside_any_body_string() {
    let org = Org::start().await;
    let comment = json!({"attributes": {"type": "CaseComment"}, "ParentId": "@{c.id}",
                         "CommentBody": "case @{c.id} is open"});
    let res = org
        .composite_results(
            true,
            json!([
                new_case("c", "s"),
                sub_post(
                    "m",
                    "composite/sobjects",
                    json!({"allOrNone": true, "records": [comment]})
                ),
                sub("GET", "sobjects/Case/@{c.id}", "g"),
            ]),
        )
        .await;
    let case_id = res[0]["body"]["id"].as_str().unwrap().to_owned();
    assert_eq!(res[1]["httpStatusCode"], 200, "{}", res[1]);
    let comment = &org.sf.records("CaseComment")[0];
    assert_eq!(comment["ParentId"], case_id.as_str());
    assert_eq!(comment["CommentBody"], format!("case {case_id} is open"));
    assert_eq!(res[2]["body"]["Id"], case_id.as_str());

    // A reference to nothing fails its subrequest with PROCESSING_HALTED;
    // under allOrNone the whole request rolls back.
    let counts = || {
        (
            org.sf.records("Case").len(),
            org.sf.records("CaseComment").len(),
        )
    };
    let before = counts();
    let dangling = json!({"ParentId": "@{c.id}", "CommentBody": "my code is @{x}"});
    let res = org
        .composite_results(true, case_then("s", "sobjects/CaseComment", dangling))
        .await;
    assert_eq!(res[1]["httpStatusCode"], 400);
    assert_eq!(code(&res[1]["body"]), "PROCESSING_HALTED");
    assert!(res[1]["body"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid reference specified"));
    assert_eq!(res[0]["httpStatusCode"], 400);
    assert_eq!(counts(), before);
    // Nested in a collection's record, without allOrNone: only that
    // subrequest fails.
    let nested = json!({"records": [{"attributes": {"type": "CaseComment"},
        "ParentId": "@{c.id}", "CommentBody": "see @{c.records[0].Id}"}]});
    let res = org
        .composite_results(false, case_then("kept", "composite/sobjects", nested))
        .await;
    assert_eq!(res[0]["httpStatusCode"], 201);
    assert_eq!(code(&res[1]["body"]), "PROCESSING_HALTED");
    assert_eq!(org.sf.records("Case").len(), before.0 + 1);

    // Outside a Composite, `@{` is text like any other.
    let text = "my code is @{x}";
    let r = org
        .post(
            "sobjects/CaseComment",
            json!({"ParentId": case_id, "CommentBody": text}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = org
        .post(
            "composite/sobjects",
            json!({"records": [{"attributes": {"type": "Case"}, "Subject": "@{c.id}"}]}),
        )
        .await;
    assert_eq!(r.body[0]["success"], true);
    assert!(org
        .sf
        .records("Case")
        .iter()
        .any(|c| c["Subject"] == "@{c.id}"));
}

#[tokio::test]
async fn a_composite_all_or_none_overrides_its_collections() {
    let org = Org::start().await;
    let records = json!([
        {"attributes": {"type": "Case"}, "Subject": "good"},
        {"attributes": {"type": "Case"}, "Subject": "x".repeat(256)},
    ]);
    let coll = |inner: bool| {
        sub_post(
            "coll",
            "composite/sobjects",
            json!({"allOrNone": inner, "records": records}),
        )
    };
    // Outer true, inner false: the outer flag wins, nothing is saved.
    let res = &org.composite_results(true, json!([coll(false)])).await[0];
    assert_eq!(res["httpStatusCode"], 400);
    assert_eq!(
        res["body"][0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert!(org.sf.records("Case").is_empty());
    // Outer false, inner true: the collection rolls back by itself.
    org.composite(false, json!([coll(true)])).await;
    assert!(org.sf.records("Case").is_empty());
    // Outer false, inner false: the valid record stays.
    let res = org.composite_results(false, json!([coll(false)])).await;
    assert_eq!(res[0]["httpStatusCode"], 200);
    assert_eq!(org.sf.records("Case").len(), 1);
    // Under an outer allOrNone=false, a failed inner-allOrNone collection
    // leaves the other subrequests' saves alone.
    let res = org
        .composite_results(false, json!([new_case("c", "kept"), coll(true)]))
        .await;
    assert_eq!(res[0]["httpStatusCode"], 201);
    assert_eq!(org.sf.records("Case").len(), 2);
}

#[tokio::test]
async fn created_records_carry_their_location_and_can_be_read() {
    let org = Org::start().await;
    org.sf.add_external_id("Case", "Ext__c");
    let res = org
        .composite_results(
            true,
            json!([
                sub_post("c", "sobjects/case", json!({"Subject": "s"})),
                sub_patch("u", "sobjects/Case/Ext__c/9", json!({"Subject": "u"})),
                sub("GET", "sobjects/Case/@{c.id}", "g"),
                sub_patch("p", "sobjects/Case/@{c.id}", json!({"Subject": "t"})),
            ]),
        )
        .await;
    let id = res[0]["body"]["id"].as_str().unwrap();
    assert_eq!(res[0]["httpHeaders"]["Location"], case_location(id));
    let upserted = res[1]["body"]["id"].as_str().unwrap();
    assert_eq!(res[1]["httpHeaders"]["Location"], case_location(upserted));
    let read = &res[2]["body"];
    assert_eq!(res[2]["httpStatusCode"], 200);
    assert_eq!(read["attributes"]["type"], "Case");
    assert_eq!(read["Subject"], "s");
    assert!(read.get("Description").is_some_and(|d| d.is_null()));
    assert!(read.get("Ext__c").is_some());
    assert!(read["CaseNumber"].is_string());
    assert_eq!(res[3]["httpStatusCode"], 204);
    assert_eq!(res[3]["httpHeaders"], json!({}));

    // Directly too, by its 15-character id as well.
    let r = org.get(&format!("sobjects/Case/{}", &id[..15])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["Id"], id);
    assert_eq!(r.body["Subject"], "t");
    assert_eq!(r.body["attributes"]["url"], case_location(id));
    let r = org.get(&format!("sobjects/Contact/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(code(&r.body), "NOT_FOUND");
}

#[tokio::test]
async fn references_index_into_an_sobject_collections_result() {
    let org = Org::start().await;
    // A collection answers an array of save results: `[n]` indexes it
    // ("Composite Subrequest": "The [] operator indexes a JSON collection
    // in the response").
    let cases = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Case"}, "Subject": "first"},
        {"attributes": {"type": "Case"}, "Subject": "second"},
    ]});
    let res = org
        .composite_results(
            true,
            json!([
                sub_post("coll", "composite/sobjects", cases.clone()),
                sub_create(
                    "m",
                    "CaseComment",
                    json!({"ParentId": "@{coll[1].id}", "CommentBody": "on the second"})
                ),
                sub("GET", "sobjects/Case/@{coll[0].id}", "g"),
            ]),
        )
        .await;
    assert_eq!(res[1]["httpStatusCode"], 201, "{}", res[1]);
    let second = res[0]["body"][1]["id"].as_str().unwrap();
    assert_eq!(org.sf.records("CaseComment")[0]["ParentId"], second);
    assert_eq!(res[2]["body"]["Subject"], "first");

    // An index past the end names nothing.
    let res = org
        .composite_results(
            false,
            json!([
                sub_post("coll", "composite/sobjects", cases),
                sub("GET", "sobjects/Case/@{coll[2].id}", "g"),
            ]),
        )
        .await;
    assert_eq!(code(&res[1]["body"]), "PROCESSING_HALTED");
}
