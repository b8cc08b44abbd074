//! Org rules a save meets: audit fields, Unique External IDs, the Case
//! assignment rule, the Contact duplicate rule, restricted picklists and
//! UTF-16 lengths.

mod common;

use common::{code, sub_create, sub_patch, sub_post, with_headers, Org};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const EXT: &str = "WitiOp_Conversation_Id__c";

#[tokio::test]
async fn audit_fields_are_refused_by_upserts_and_updates_even_when_enabled() {
    let org = Org::start().await;
    org.sf.set_audit_fields(true);
    org.sf.add_external_id("Case", EXT);
    let date = "2026-01-02T03:04:05.000+0000";
    // A plain insert may set them.
    let ok = org
        .post(
            "sobjects/Case",
            json!({"Subject": "s", "CreatedDate": date, "CreatedById": org.sf.api_user_id}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let id = ok.body["id"].as_str().unwrap().to_owned();
    // An upsert that inserts, an upsert that updates, an update: never.
    for path in [
        format!("sobjects/Case/{EXT}/new-1"),
        format!("sobjects/Case/{id}"),
    ] {
        for field in ["CreatedDate", "LastModifiedDate"] {
            let r = org.patch(&path, json!({"Subject": "x", field: date})).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {field}");
            assert_eq!(code(&r.body), "INVALID_FIELD_FOR_INSERT_UPDATE");
            assert_eq!(r.body[0]["fields"], json!([field]));
        }
    }
    org.sf
        .insert("Case", json!({"Subject": "held", EXT: "held-1"}))
        .unwrap();
    let r = org
        .patch(
            &format!("sobjects/Case/{EXT}/held-1"),
            json!({"CreatedById": org.sf.api_user_id}),
        )
        .await;
    assert_eq!(code(&r.body), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(r.body[0]["fields"], json!(["CreatedById"]));
    assert_eq!(org.sf.records("Case").len(), 2, "nothing written");

    // Inside a Composite too, and the whole transaction rolls back.
    let res = org
        .composite_results(
            true,
            json!([
                sub_create(
                    "c",
                    "Case",
                    json!({"Subject": "first", "CreatedDate": date})
                ),
                sub_patch(
                    "u",
                    &format!("sobjects/Case/{EXT}/comp-1"),
                    json!({"Subject": "x", "CreatedDate": date})
                ),
            ]),
        )
        .await;
    assert_eq!(res[0]["httpStatusCode"], 400);
    assert_eq!(res[1]["httpStatusCode"], 400);
    assert_eq!(code(&res[1]["body"]), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(org.sf.records("Case").len(), 2);
}

#[tokio::test]
async fn external_ids_are_unique() {
    let org = Org::start().await;
    org.sf.add_external_id("Case", EXT);
    let first = org
        .post("sobjects/Case", json!({"Subject": "a", EXT: "1793"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let first_id = first.body["id"].as_str().unwrap().to_owned();

    // Direct: the clash names the field and the record holding the value
    // (15 characters, as Salesforce writes it) in its message only, with
    // `fields` empty as a real org answers; values compare case-insensitively.
    let again = org
        .post("sobjects/Case", json!({"Subject": "b", EXT: "1793"}))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&again.body), "DUPLICATE_VALUE");
    assert_eq!(
        again.body[0]["message"],
        format!(
            "duplicate value found: {EXT} duplicates value on record with id: {}",
            &first_id[..15]
        )
    );
    assert_eq!(again.body[0]["fields"], json!([]));
    org.sf.add_external_id("Contact", "Ext__c");
    for (last, ext, status, error) in [
        ("x", "AbC", StatusCode::CREATED, ""),
        ("y", "aBc", StatusCode::BAD_REQUEST, "DUPLICATE_VALUE"),
    ] {
        let contact = json!({"LastName": last, "Ext__c": ext});
        let c = org.post("sobjects/Contact", contact).await;
        assert_eq!((c.status, code(&c.body)), (status, error), "{ext}");
    }

    // A collection: the clashing record fails, a second copy in the same
    // batch clashes with the first.
    let r = org
        .post(
            "composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Case"}, EXT: "1793"},
                {"attributes": {"type": "Case"}, EXT: "2000"},
                {"attributes": {"type": "Case"}, EXT: "2000"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(code(&r.body[0]), "DUPLICATE_VALUE");
    assert_eq!(r.body[1]["success"], true);
    assert_eq!(code(&r.body[2]), "DUPLICATE_VALUE");
    assert_eq!(r.body[2]["errors"][0]["fields"], json!([]));

    // A Composite subrequest under allOrNone: everything rolls back.
    let before = org.sf.records("Case").len();
    let res = org
        .composite_results(
            true,
            json!([
                sub_create("ok", "Case", json!({"Subject": "new", EXT: "3000"})),
                sub_create("dup", "Case", json!({"Subject": "dup", EXT: "1793"})),
            ]),
        )
        .await;
    assert_eq!(code(&res[1]["body"]), "DUPLICATE_VALUE");
    assert_eq!(code(&res[0]["body"]), "PROCESSING_HALTED");
    assert_eq!(org.sf.records("Case").len(), before);

    // An update that would copy another record's value clashes too.
    let r = org
        .patch(&format!("sobjects/Case/{first_id}"), json!({EXT: "2000"}))
        .await;
    assert_eq!(code(&r.body), "DUPLICATE_VALUE");

    // An API user that cannot see the other record learns neither its
    // field nor its id.
    org.sf.set_clashing_records_hidden(true);
    let hidden = org
        .post("sobjects/Case", json!({"Subject": "c", EXT: "1793"}))
        .await;
    assert_eq!(
        hidden.body,
        json!([{"errorCode": "DUPLICATE_VALUE", "fields": [], "message": "duplicate value found: <unknown> duplicates value on record with id: <unknown>"}])
    );
}

const NO_ASSIGN: &[(&str, &str)] = &[("Sforce-Auto-Assign", "FALSE")];

/// An org's CaseComment trigger that updates the parent Case makes the
/// comment's request one that "indirectly" updates a Case: assignment rules
/// run on it unless that request carries `Sforce-Auto-Assign: FALSE`.
#[tokio::test]
async fn a_comment_that_touches_its_case_runs_assignment_unless_told_not_to() {
    let org = Org::start().await;
    let queue_owner = org.sf.add_user(
        "queue@acme.example",
        "queue@acme.example",
        "Q",
        "Owner",
        true,
    );
    let case = org
        .call(
            Method::POST,
            "sobjects/Case",
            Some(json!({"Subject": "mine"})),
            NO_ASSIGN,
        )
        .await;
    let case_id = case.body["id"].as_str().unwrap().to_owned();
    org.sf.set_case_assignment_rule(Some(queue_owner.clone()));
    org.sf.set_case_comment_trigger(true);
    let owner = || {
        org.sf.records("Case")[0]["OwnerId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let comment = json!({"ParentId": case_id, "CommentBody": "hello"});
    let told = org
        .call(
            Method::POST,
            "sobjects/CaseComment",
            Some(comment.clone()),
            NO_ASSIGN,
        )
        .await;
    assert_eq!(told.status, StatusCode::CREATED);
    assert_eq!(owner(), org.sf.api_user_id);
    let untold = org.post("sobjects/CaseComment", comment).await;
    assert_eq!(untold.status, StatusCode::CREATED);
    assert_eq!(owner(), queue_owner);
}

#[tokio::test]
async fn an_upsert_body_cannot_contradict_its_url() {
    let org = Org::start().await;
    org.sf.add_external_id("Case", EXT);
    let path = format!("sobjects/Case/{EXT}/1793");
    let r = org.patch(&path, json!({EXT: "1794"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.body), "INVALID_FIELD");
    assert!(org.sf.records("Case").is_empty());
    let r = org.patch(&path, json!({EXT: "1793", "Subject": "s"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(org.sf.records("Case")[0][EXT], "1793");
}

#[tokio::test]
async fn the_case_assignment_rule_overrides_the_owner_unless_told_not_to() {
    let org = Org::start().await;
    let agent = org.add_agent();
    let queue_owner = org
        .sf
        .add_user("rule@acme.crm", "rule@acme.example", "R", "U", true);
    let owner_of = |org: &Org, id: &Value| -> Value {
        org.sf
            .records("Case")
            .into_iter()
            .find(|c| &c["Id"] == id)
            .map(|c| c["OwnerId"].clone())
            .unwrap()
    };
    let case = json!({"Subject": "s", "OwnerId": agent});

    // Off by default: the owner the request set stays.
    let r = org.post("sobjects/Case", case.clone()).await;
    assert_eq!(owner_of(&org, &r.body["id"]), json!(agent));

    org.sf.set_case_assignment_rule(Some(queue_owner.clone()));
    let r = org.post("sobjects/Case", case.clone()).await;
    assert_eq!(owner_of(&org, &r.body["id"]), json!(queue_owner));
    let mut kept = Value::Null;
    for (value, owner) in [
        ("FALSE", &agent),
        ("false", &agent),
        ("False", &agent),
        ("TRUE", &queue_owner),
    ] {
        let r = org
            .call(
                Method::POST,
                "sobjects/Case",
                Some(case.clone()),
                &[("Sforce-Auto-Assign", value)],
            )
            .await;
        assert_eq!(owner_of(&org, &r.body["id"]), json!(owner), "{value}");
        if value == "FALSE" {
            kept = r.body["id"].clone();
        }
    }

    // An update without the header runs the rules too.
    let path = format!("sobjects/Case/{}", kept.as_str().unwrap());
    org.call(
        Method::PATCH,
        &path,
        Some(json!({"Subject": "t"})),
        &[("Sforce-Auto-Assign", "FALSE")],
    )
    .await;
    assert_eq!(owner_of(&org, &kept), json!(agent));
    org.patch(&path, json!({"Subject": "u"})).await;
    assert_eq!(owner_of(&org, &kept), json!(queue_owner));

    // Collections called directly: the request's own header.
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Case"}, "Subject": "c", "OwnerId": agent}]});
    let r = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(body.clone()),
            &[("Sforce-Auto-Assign", "FALSE")],
        )
        .await;
    assert_eq!(owner_of(&org, &r.body[0]["id"]), json!(agent));
    let r = org.post("composite/sobjects", body.clone()).await;
    assert_eq!(owner_of(&org, &r.body[0]["id"]), json!(queue_owner));

    // Composite: only the subrequest's own httpHeaders count.
    let sub = |reference: &str, headers: Value| {
        with_headers(sub_create(reference, "Case", case.clone()), headers)
    };
    let coll = with_headers(
        sub_post("coll", "composite/sobjects", body),
        json!({"sforce-auto-assign": "false"}),
    );
    let r = org
        .call(
            Method::POST,
            "composite",
            Some(json!({"allOrNone": true, "compositeRequest": [
                sub("plain", json!({})),
                sub("off", json!({"Sforce-Auto-Assign": "FALSE"})),
                coll,
            ]})),
            &[("Sforce-Auto-Assign", "FALSE")],
        )
        .await;
    let res = &r.body["compositeResponse"];
    assert_eq!(owner_of(&org, &res[0]["body"]["id"]), json!(queue_owner));
    assert_eq!(owner_of(&org, &res[1]["body"]["id"]), json!(agent));
    assert_eq!(owner_of(&org, &res[2]["body"][0]["id"]), json!(agent));

    org.sf.set_case_assignment_rule(None);
    let r = org.post("sobjects/Case", case).await;
    assert_eq!(owner_of(&org, &r.body["id"]), json!(agent));
}

#[tokio::test]
async fn the_contact_duplicate_rule_blocks_unless_allowed() {
    let org = Org::start().await;
    let maria = json!({"FirstName": "Maria", "LastName": "Rossi"});
    // Inactive by default: a second Maria Rossi saves.
    for _ in 0..2 {
        let r = org.post("sobjects/Contact", maria.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }

    org.sf.set_contact_duplicate_rule(true);
    let shouted = json!({"FirstName": "maria", "LastName": "ROSSI"});
    let r = org.post("sobjects/Contact", shouted).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.body), "DUPLICATES_DETECTED");
    assert_eq!(r.body[0]["message"], "Use one of these records?");
    let dup = &r.body[0]["duplicateResult"];
    assert_eq!(dup["allowSave"], true);
    assert_eq!(
        dup["matchResults"][0]["matchRecords"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Another name saves.
    let other = org
        .post(
            "sobjects/Contact",
            json!({"FirstName": "Mario", "LastName": "Rossi"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
    let allow = [(
        "Sforce-Duplicate-Rule-Header",
        "allowSave=true; includeRecordDetails=false",
    )];
    let r = org
        .call(
            Method::POST,
            "sobjects/Contact",
            Some(maria.clone()),
            &allow,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Renaming into a duplicate is caught too.
    let path = format!("sobjects/Contact/{}", other.body["id"].as_str().unwrap());
    let r = org.patch(&path, json!({"FirstName": "Maria"})).await;
    assert_eq!(code(&r.body), "DUPLICATES_DETECTED");

    // Collections: the request's header; per-record statusCode.
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "FirstName": "Maria", "LastName": "Rossi"}]});
    let r = org.post("composite/sobjects", body.clone()).await;
    assert_eq!(r.body[0]["errors"][0]["statusCode"], "DUPLICATES_DETECTED");
    let r = org
        .call(Method::POST, "composite/sobjects", Some(body), &allow)
        .await;
    assert_eq!(r.body[0]["success"], true);

    // Composite: the subrequest's own header, not the top-level one.
    let r = org
        .call(
            Method::POST,
            "composite",
            Some(json!({"allOrNone": false, "compositeRequest": [
                sub_create("top", "Contact", maria.clone()),
                with_headers(
                    sub_create("own", "Contact", maria),
                    json!({"Sforce-Duplicate-Rule-Header": "allowSave=true"})
                ),
            ]})),
            &allow,
        )
        .await;
    let res = &r.body["compositeResponse"];
    assert_eq!(code(&res[0]["body"]), "DUPLICATES_DETECTED");
    assert_eq!(res[1]["httpStatusCode"], 201);
}

#[tokio::test]
async fn restricted_picklists_accept_only_their_values() {
    let org = Org::start().await;
    let r = org
        .post(
            "sobjects/Case",
            json!({"Subject": "s", "Origin": "WhatsApp"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "unrestricted stores any value"
    );
    org.sf
        .restrict_picklist("Case", "Origin", &["Phone", "Web", "WhatsApp"]);
    assert_eq!(
        org.post("sobjects/Case", json!({"Origin": "Web"}))
            .await
            .status,
        StatusCode::CREATED
    );
    for bad in ["Telegram", "web"] {
        let r = org.post("sobjects/Case", json!({"Origin": bad})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&r.body), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
        assert_eq!(r.body[0]["fields"], json!(["Origin"]));
    }
    let id = org.sf.records("Case")[0]["Id"].as_str().unwrap().to_owned();
    let r = org
        .patch(&format!("sobjects/Case/{id}"), json!({"Origin": "Fax"}))
        .await;
    assert_eq!(code(&r.body), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
}

#[tokio::test]
async fn text_lengths_count_utf16_units_and_comment_bodies_bytes() {
    let org = Org::start().await;
    let emoji = "😀";
    // LastName holds 80 units: 40 emoji fit, 41 do not.
    let ok = org
        .post("sobjects/Contact", json!({"LastName": emoji.repeat(40)}))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    for n in [41, 80] {
        let r = org
            .post("sobjects/Contact", json!({"LastName": emoji.repeat(n)}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{n}");
        assert_eq!(code(&r.body), "STRING_TOO_LONG");
        assert_eq!(r.body[0]["fields"], json!(["LastName"]));
    }
    // Characters of the Basic Multilingual Plane count one each.
    let r = org
        .post("sobjects/Contact", json!({"LastName": "é".repeat(80)}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // CommentBody: 4,000 bytes, so 1,000 emoji (4 bytes each) fit, 1,001 do not.
    let case = org.sf.insert("Case", json!({"Subject": "s"})).unwrap();
    let r = org
        .post(
            "sobjects/CaseComment",
            json!({"ParentId": case, "CommentBody": emoji.repeat(1000)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = org
        .post(
            "sobjects/CaseComment",
            json!({"ParentId": case, "CommentBody": emoji.repeat(1001)}),
        )
        .await;
    assert_eq!(code(&r.body), "STRING_TOO_LONG");
}

/// A Contact linked to no Account is private to its owner and to users who
/// can view all data; linked to an Account it follows the org's sharing.
#[tokio::test]
async fn contacts_without_an_account_are_private_to_their_owner() {
    let org = Org::start().await;
    let agent = org.sf.add_user(
        "agent@acme.example",
        "agent@acme.example",
        "A",
        "Gent",
        true,
    );
    org.sf
        .allow_login(&agent, "agent@acme.example", "agent-password");
    let (status, login) = org
        .password_login("agent@acme.example", "agent-password")
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let as_agent = org.as_token(login["access_token"].as_str().unwrap());
    let account = org
        .sf
        .insert("Account", json!({"Name": "WhatsApp customers"}))
        .unwrap();
    let theirs = org
        .post("sobjects/Contact", json!({"LastName": "api owned"}))
        .await;
    let mine = org
        .post(
            "sobjects/Contact",
            json!({"LastName": "agent owned", "OwnerId": agent}),
        )
        .await;
    let shared = org
        .post(
            "sobjects/Contact",
            json!({"LastName": "under account", "AccountId": account}),
        )
        .await;
    for r in [&theirs, &mine, &shared] {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let names = |reply: common::Reply| -> Vec<String> {
        let mut names: Vec<String> = reply.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["LastName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let soql = "SELECT LastName FROM Contact";
    assert_eq!(
        names(as_agent.query(soql).await),
        ["agent owned", "under account"]
    );
    // The integration user sees every Contact (it must, to match numbers).
    assert_eq!(names(org.query(soql).await).len(), 3);
}
