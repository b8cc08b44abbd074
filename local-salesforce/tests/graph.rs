//! Composite Graph: the shapes, each graph atomic on its own, references
//! within a graph only, the node kinds and every limit of the limits page,
//! one API call, and the same save rules as the other write paths.

mod common;

use common::{code, graph_of, sub, sub_create, url, with_headers, Org};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A node creating a Case with `subject`.
fn new_case(reference: &str, subject: &str) -> Value {
    sub_create(reference, "Case", json!({"Subject": subject}))
}

/// A node creating a comment on the Case node `case`.
fn comment(reference: &str, case: &str, text: &str) -> Value {
    sub_create(
        reference,
        "CaseComment",
        json!({"ParentId": format!("@{{{case}.id}}"), "CommentBody": text}),
    )
}

/// The nth node result of a graph answer.
fn node(graph: &Value, n: usize) -> &Value {
    &graph["graphResponse"]["compositeResponse"][n]
}

fn message(result: &Value) -> &str {
    result["body"][0]["message"].as_str().unwrap_or("")
}

/// `n` graphs of one Case each, named `{prefix}{i}`.
fn case_graphs(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            graph_of(
                &format!("{prefix}{i}"),
                json!([new_case(&format!("{prefix}c{i}"), "s")]),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_graph_commits_or_rolls_back_on_its_own_in_one_api_call() {
    let org = Org::start().await;
    org.sf.reset_counters();
    let contact = sub_create("p1", "Contact", json!({"LastName": "Cashman"}));
    let case = sub_create(
        "c1",
        "Case",
        json!({"Subject": "first", "ContactId": "@{p1.id}"}),
    );
    let graphs = org
        .graph_results(json!([
            graph_of("g1", json!([contact, case, comment("m1", "c1", "hello")])),
            graph_of(
                "g2",
                json!([
                    new_case("c2", "second"),
                    comment("m2", "c2", &"x".repeat(4001)),
                    comment("m3", "c2", "never runs"),
                ])
            ),
            graph_of("g3", json!([new_case("c3", "third")])),
        ]))
        .await;
    assert_eq!(
        org.sf.counters().api_calls,
        1,
        "the whole request is one call"
    );

    let (g1, g2, g3) = (&graphs[0], &graphs[1], &graphs[2]);
    assert_eq!(g1["graphId"], "g1");
    assert_eq!(g1["isSuccessful"], true);
    let created = node(g1, 1);
    assert_eq!(created["httpStatusCode"], 201);
    assert_eq!(created["referenceId"], "c1");
    let case_id = created["body"]["id"].as_str().unwrap();
    assert_eq!(created["body"]["success"], true);
    assert_eq!(
        created["httpHeaders"]["Location"],
        url(&format!("sobjects/Case/{case_id}"))
    );

    // The failing node keeps its error; the node before it reports the
    // rollback, the one after it never ran.
    assert_eq!(g2["isSuccessful"], false);
    assert_eq!(node(g2, 0)["httpStatusCode"], 400);
    assert_eq!(code(&node(g2, 0)["body"]), "PROCESSING_HALTED");
    assert_eq!(node(g2, 0)["httpHeaders"], json!({}));
    assert_eq!(code(&node(g2, 1)["body"]), "STRING_TOO_LONG");
    assert_eq!(code(&node(g2, 2)["body"]), "PROCESSING_HALTED");
    assert_eq!(g3["isSuccessful"], true);

    let subjects: Vec<Value> = org
        .sf
        .records("Case")
        .iter()
        .map(|c| c["Subject"].clone())
        .collect();
    assert_eq!(subjects, vec![json!("first"), json!("third")]);
    let comments = org.sf.records("CaseComment");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["ParentId"], case_id);
    assert_eq!(org.sf.records("Contact").len(), 1);
}

#[tokio::test]
async fn a_reference_reaches_only_its_own_graph() {
    let org = Org::start().await;
    let graphs = org
        .graph_results(json!([
            graph_of("g1", json!([new_case("c1", "mine")])),
            graph_of(
                "g2",
                json!([comment("m2", "c1", "to another graph's Case")])
            ),
        ]))
        .await;
    assert_eq!(graphs[0]["isSuccessful"], true);
    assert_eq!(graphs[1]["isSuccessful"], false);
    let failed = node(&graphs[1], 0);
    assert_eq!(code(&failed["body"]), "PROCESSING_HALTED");
    assert!(message(failed).starts_with("Invalid reference specified"));
    assert!(org.sf.records("CaseComment").is_empty());

    // Within a graph, in the url too; a node cannot refer to a later one.
    let graphs = org
        .graph_results(json!([
            graph_of(
                "g1",
                json!([
                    new_case("c", "s"),
                    sub("GET", "sobjects/Case/@{c.id}", "read")
                ])
            ),
            graph_of(
                "g2",
                json!([comment("early", "late", "x"), new_case("late", "s")])
            ),
        ]))
        .await;
    assert_eq!(node(&graphs[0], 1)["body"]["Subject"], "s");
    assert_eq!(graphs[1]["isSuccessful"], false);
}

#[tokio::test]
async fn only_sobject_nodes_are_allowed() {
    let org = Org::start().await;
    org.sf.add_external_id("Case", "Ext__c");
    let refused = [
        sub("GET", "query?q=SELECT+Id+FROM+Case", "q"),
        json!({"method": "POST", "url": url("composite/sobjects"), "referenceId": "coll",
               "body": {"records": [{"attributes": {"type": "Case"}, "Subject": "s"}]}}),
        sub("GET", "limits", "l"),
        sub("DELETE", "sobjects/Case/@{c.id}", "d"),
        json!({"method": "post", "url": url("sobjects/Case"), "referenceId": "lower"}),
    ];
    for bad in refused {
        let r = org
            .graph(json!([graph_of(
                "g",
                json!([new_case("c", "s"), bad.clone()])
            )]))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(code(&r.body), "INVALID_FIELD", "{bad}");
    }
    assert!(org.sf.records("Case").is_empty(), "no graph ran");

    // The documented kinds: create, read, update, upsert and read by
    // External ID.
    let graphs = org
        .graph_results(json!([graph_of(
            "g",
            json!([
                new_case("c", "s"),
                common::sub_patch("u", "sobjects/Case/@{c.id}", json!({"Subject": "t"})),
                common::sub_patch("x", "sobjects/Case/Ext__c/A-1", json!({"Subject": "e"})),
                sub("GET", "sobjects/Case/Ext__c/A-1", "rx"),
            ])
        )]))
        .await;
    let g = &graphs[0];
    assert_eq!(g["isSuccessful"], true, "{g}");
    assert_eq!(node(g, 1)["httpStatusCode"], 204);
    assert_eq!(node(g, 2)["httpStatusCode"], 201);
    assert_eq!(node(g, 3)["body"]["Subject"], "e");
    assert_eq!(node(g, 3)["body"]["Ext__c"], "A-1");

    // The resource starts at API 50.0.
    let r = org
        .http
        .post(format!(
            "{}/services/data/v49.0/composite/graph",
            org.sf.url
        ))
        .bearer_auth(&org.token)
        .json(&json!({"graphs": [graph_of("g", json!([]))]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn graphs_and_nodes_are_limited_per_request_and_per_graph() {
    let org = Org::start().await;
    let r = org.graph(json!(case_graphs("a", 75))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = org.graph(json!(case_graphs("b", 76))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.body), "LIMIT_EXCEEDED");

    let nodes = |prefix: &str, n: usize| -> Value {
        (0..n)
            .map(|i| new_case(&format!("{prefix}{i}"), "s"))
            .collect()
    };
    let r = org.graph(json!([graph_of("one", nodes("n", 500))])).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = org.graph(json!([graph_of("one", nodes("m", 501))])).await;
    assert_eq!(code(&r.body), "LIMIT_EXCEEDED");
    let r = org
        .graph(json!([
            graph_of("a", nodes("p", 250)),
            graph_of("b", nodes("q", 251))
        ]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.body), "LIMIT_EXCEEDED");
    assert_eq!(org.sf.records("Case").len(), 75 + 500);
}

#[tokio::test]
async fn a_graph_is_at_most_15_deep() {
    let org = Org::start().await;
    // A chain: each Case names the previous one's id in its Subject.
    let chain = |n: usize| -> Value {
        let mut nodes = vec![new_case("n0", "root")];
        for i in 1..n {
            let subject = format!("@{{n{}.id}}", i - 1);
            nodes.push(new_case(&format!("n{i}"), &subject));
        }
        json!([graph_of("chain", json!(nodes))])
    };
    let r = org.graph(chain(15)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["graphs"][0]["isSuccessful"], true);
    let r = org.graph(chain(16)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.body), "LIMIT_EXCEEDED");
    assert_eq!(org.sf.records("Case").len(), 15);
}

#[tokio::test]
async fn at_most_15_different_nodes_by_version_method_and_object() {
    let org = Org::start().await;
    // POST Case at 15 API versions: 15 kinds; a GET of one more is the 16th.
    let nodes: Vec<Value> = (50..65)
        .map(|v| {
            json!({"method": "POST", "url": format!("/services/data/v{v}.0/sobjects/Case"),
                   "referenceId": format!("v{v}"), "body": {"Subject": "s"}})
        })
        .collect();
    let r = org.graph(json!([graph_of("g", json!(nodes))])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The same object named in another case is the same kind.
    let mut more = nodes.clone();
    more.push(sub_create("lower", "case", json!({"Subject": "s"})));
    let r = org.graph(json!([graph_of("g", json!(more.clone()))])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Another method on an object already used is another kind.
    more.push(sub("GET", "sobjects/Case/@{lower.id}", "read"));
    let r = org.graph(json!([graph_of("g", json!(more))])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r.body), "LIMIT_EXCEEDED");
}

#[tokio::test]
async fn after_14_failed_graphs_the_rest_are_not_processed() {
    let org = Org::start().await;
    let failing = |i: usize| {
        graph_of(
            &format!("bad{i}"),
            json!([sub_create(
                &format!("f{i}"),
                "Contact",
                json!({"FirstName": "x"})
            )]),
        )
    };
    // 13 failures: the next graph still runs.
    let mut graphs: Vec<Value> = (0..13).map(failing).collect();
    graphs.extend(case_graphs("ok", 1));
    let answer = org.graph_results(json!(graphs)).await;
    assert_eq!(answer[13]["isSuccessful"], true);
    assert_eq!(org.sf.records("Case").len(), 1);

    // 14 failures: the graphs after them answer PROCESSING_HALTED, unrun.
    let mut graphs: Vec<Value> = (0..14).map(failing).collect();
    graphs.extend(case_graphs("late", 2));
    let answer = org.graph_results(json!(graphs)).await;
    assert_eq!(
        code(&node(&answer[13], 0)["body"]),
        "REQUIRED_FIELD_MISSING"
    );
    for g in &answer[14..] {
        assert_eq!(g["isSuccessful"], false);
        assert_eq!(node(g, 0)["httpStatusCode"], 400);
        assert_eq!(code(&node(g, 0)["body"]), "PROCESSING_HALTED");
    }
    assert_eq!(org.sf.records("Case").len(), 1);
}

#[tokio::test]
async fn node_and_request_headers_change_nothing() {
    let org = Org::start().await;
    let agent = org.add_agent();
    org.sf.set_case_assignment_rule(Some(agent.clone()));
    org.sf.set_contact_duplicate_rule(true);
    org.sf
        .insert("Contact", json!({"FirstName": "Ana", "LastName": "Silva"}))
        .unwrap();
    let own = json!({"Sforce-Auto-Assign": "FALSE",
                     "Sforce-Duplicate-Rule-Header": "allowSave=true"});
    let case = sub_create(
        "c",
        "Case",
        json!({"Subject": "s", "OwnerId": org.sf.api_user_id}),
    );
    let twin = sub_create(
        "p",
        "Contact",
        json!({"FirstName": "Ana", "LastName": "Silva"}),
    );
    let body = json!({"graphs": [
        graph_of("g1", json!([with_headers(case, own.clone())])),
        graph_of("g2", json!([with_headers(twin, own)])),
    ]});
    let r = org
        .call(
            Method::POST,
            "composite/graph",
            Some(body),
            &[
                ("Sforce-Auto-Assign", "FALSE"),
                ("Sforce-Duplicate-Rule-Header", "allowSave=true"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let graphs = &r.body["graphs"];
    // The assignment rule ran: the owner the node set was replaced.
    assert_eq!(graphs[0]["isSuccessful"], true);
    assert_eq!(org.sf.records("Case")[0]["OwnerId"], agent.as_str());
    // The duplicate rule's alert held the twin back.
    assert_eq!(graphs[1]["isSuccessful"], false);
    assert_eq!(code(&node(&graphs[1], 0)["body"]), "DUPLICATES_DETECTED");
    assert_eq!(org.sf.records("Contact").len(), 1);
}

#[tokio::test]
async fn nodes_meet_the_same_save_rules_as_every_write() {
    let org = Org::start().await;
    let graphs = org
        .graph_results(json!([
            graph_of(
                "audit",
                json!([sub_create(
                    "a",
                    "Case",
                    json!({"Subject": "s", "CreatedDate": "2026-01-01T00:00:00Z"})
                )])
            ),
            graph_of(
                "required",
                json!([sub_create("r", "Contact", json!({"FirstName": "A"}))])
            ),
            graph_of(
                "text",
                json!([new_case("c", "s"), comment("m", "c", "my code is @{x}")])
            ),
        ]))
        .await;
    assert_eq!(
        code(&node(&graphs[0], 0)["body"]),
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    );
    assert_eq!(code(&node(&graphs[1], 0)["body"]), "REQUIRED_FIELD_MISSING");
    assert_eq!(code(&node(&graphs[2], 1)["body"]), "PROCESSING_HALTED");
    assert!(message(node(&graphs[2], 1)).starts_with("Invalid reference specified"));
    assert!(graphs.iter().all(|g| g["isSuccessful"] == false));
    assert!(org.sf.records("Case").is_empty());
    assert!(org.sf.records("Contact").is_empty());

    // Malformed requests are refused whole.
    for bad in [
        json!({}),
        json!({"graphs": []}),
        json!({"graphs": [graph_of("g.1", json!([new_case("c", "s")]))]}),
        json!({"graphs": [graph_of(&"g".repeat(40), json!([new_case("c", "s")]))]}),
        json!({"graphs": [graph_of("_g", json!([new_case("c", "s")]))]}),
        json!({"graphs": [graph_of("g", json!([new_case("c", "s")])),
                          graph_of("g", json!([new_case("d", "s")]))]}),
        json!({"graphs": [graph_of("g", json!([new_case("c", "s")])),
                          graph_of("h", json!([new_case("c", "s")]))]}),
        json!({"graphs": [graph_of("g", json!([]))]}),
    ] {
        let r = org.post("composite/graph", bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(code(&r.body), "INVALID_FIELD", "{bad}");
    }
    let r = org
        .graph(json!([graph_of(
            &"g".repeat(39),
            json!([new_case("c", "s")])
        )]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
