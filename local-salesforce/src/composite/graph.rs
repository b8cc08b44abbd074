//! Composite Graph (`POST /services/data/vXX.X/composite/graph`, API 50.0+):
//! up to 75 graphs in one API call, each all-or-nothing on its own, nodes
//! referring only to earlier nodes of their own graph.
//!
//! Pages followed (REST API Developer Guide):
//! - "Composite Graph", resources_composite_graph.htm
//!   (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_graph.htm):
//!   the request and response shapes; "The entire request counts as a
//!   single call toward your API limits".
//! - "Using Composite Graphs", resources_composite_graph_introduction.htm
//!   (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_graph_introduction.htm):
//!   the only node URLs supported, each graph completed or not at all, and
//!   the graphId rules.
//! - "Composite Graph Limits", resources_composite_graph_limits.htm
//!   (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/resources_composite_graph_limits.htm).
//! - "Composite Subrequest" of Composite Graph,
//!   resources_composite_graph_composite_subrequest.htm
//!   (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-graph-composite-subrequest.html):
//!   a node has `body`, `method` (case-sensitive), `referenceId` and `url`.
//!   Earlier editions of that page also listed `httpHeaders`; the current
//!   one does not, so a node's headers are given no effect here, and nor
//!   are the graph request's own save headers (no page says they reach the
//!   nodes): every node saves as a request without `Sforce-Auto-Assign` or
//!   `Sforce-Duplicate-Rule-Header` would, the stricter reading for a
//!   client.

mod check;

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{created_location, percent_decode, refs, HALTED};
use crate::gate::{finish, rest_error, JsonCall};
use crate::operations::{
    run_create, run_retrieve, run_retrieve_by_external_id, run_update, run_upsert,
};
use crate::org::{object_name, Actor};
use crate::server::{Inner, Shared};
use check::{check_request, parse_target};

/// The first API version serving the resource ("Composite Graph": "This
/// resource is available in REST API version 50.0 and later").
const MIN_GRAPH_VERSION: f64 = 50.0;
const MAX_GRAPHS: usize = 75;
const MAX_NODES: usize = 500;
const MAX_DEPTH: usize = 15;
const MAX_NODE_KINDS: usize = 15;
/// "If the number of graph failures exceeds the maximum limit of 14,
/// processing is halted for the remaining graphs": the limit is 14 failed
/// graphs, so here the graphs after the 14th failure are not processed
/// (the stricter reading of "exceeds").
const MAX_FAILED_GRAPHS: usize = 14;
/// graphId: "Must be less than 40 characters" ("Using Composite Graphs").
const MAX_GRAPH_ID: usize = 39;

const HALTED_GRAPHS: &str =
    "Processing halted: the request's earlier graphs failed the maximum number of times (14).";

/// What a node does, read from its method and url before any node runs.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Target {
    /// `POST /sobjects/{Type}`.
    Create,
    /// `GET`/`PATCH` `/sobjects/{Type}/{id}`.
    Row(String),
    /// `GET`/`PATCH` `/sobjects/{Type}/{field}/{value}`.
    ExternalId(String, String),
}

/// One node of a graph, checked.
pub(super) struct Node {
    pub(super) reference: String,
    pub(super) method: String,
    /// The API version of the node's url, which may differ from the
    /// request's ("Composite Graph Limits" counts nodes of different versions
    /// as different nodes).
    pub(super) version: String,
    pub(super) object: String,
    pub(super) raw: Value,
}

impl Node {
    /// "Nodes are considered different if they use resources from
    /// different API versions, a different HTTP method, or different types
    /// of objects" ("Composite Graph Limits").
    pub(super) fn kind(&self) -> (String, String, String) {
        let object = object_name(&self.object)
            .map(str::to_owned)
            .unwrap_or_else(|| self.object.to_ascii_lowercase());
        (self.version.clone(), self.method.clone(), object)
    }
}

pub(super) struct Graph {
    pub(super) id: String,
    pub(super) nodes: Vec<Node>,
}

pub(crate) async fn graph(State(state): State<Shared>, call: JsonCall) -> Response {
    let JsonCall {
        user_id,
        api,
        value,
        ..
    } = call;
    if api.parse::<f64>().is_ok_and(|v| v < MIN_GRAPH_VERSION) {
        return rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    }
    let graphs = match check_request(&value) {
        Ok(graphs) => graphs,
        Err(errors) => return finish(&state, StatusCode::BAD_REQUEST, errors),
    };
    // The graph request's own headers are ignored on purpose (module docs).
    let actor = Actor::new(&user_id);
    let mut s = state.lock().expect("state lock");
    s.org.begin();
    let mut failures = 0;
    let mut answers = Vec::with_capacity(graphs.len());
    for graph in &graphs {
        let (ok, results) = if failures >= MAX_FAILED_GRAPHS {
            (false, halted_graph(graph))
        } else {
            run_graph(&mut s, &actor, graph)
        };
        if !ok {
            failures += 1;
        }
        let results: Vec<Value> = results
            .into_iter()
            .map(|(reference, status, body, headers)| {
                json!({"body": body, "httpHeaders": headers,
                       "httpStatusCode": status.as_u16(), "referenceId": reference})
            })
            .collect();
        answers.push(json!({
            "graphId": graph.id,
            "graphResponse": {"compositeResponse": results},
            "isSuccessful": ok,
        }));
    }
    s.org.commit();
    drop(s);
    // Failed graphs or not, the request itself succeeded: 200, each graph
    // saying whether it was processed ("isSuccessful").
    finish(&state, StatusCode::OK, json!({"graphs": answers}))
}

type NodeResult = (String, StatusCode, Value, Map<String, Value>);

/// Runs one graph inside the request's transaction; on any failure
/// everything it saved is undone and the other nodes say so.
fn run_graph(s: &mut Inner, actor: &Actor, graph: &Graph) -> (bool, Vec<NodeResult>) {
    let savepoint = s.org.savepoint();
    // Only this graph's results: a reference to another graph's node finds
    // nothing and fails like any reference to nothing.
    let mut outputs: HashMap<String, Value> = HashMap::new();
    let mut results: Vec<NodeResult> = Vec::with_capacity(graph.nodes.len());
    let mut failed_at = None;
    for (i, node) in graph.nodes.iter().enumerate() {
        if failed_at.is_some() {
            results.push(halted(&node.reference, HALTED));
            continue;
        }
        let (status, body, headers) = match refs::resolve(&node.raw, &outputs) {
            Ok((method, url, body)) => run_node(s, actor, node, &method, &url, &body),
            Err(message) => (
                StatusCode::BAD_REQUEST,
                json!([{"errorCode": "PROCESSING_HALTED", "message": message}]),
                Map::new(),
            ),
        };
        if status.is_success() {
            outputs.insert(node.reference.clone(), body.clone());
        } else {
            failed_at = Some(i);
        }
        results.push((node.reference.clone(), status, body, headers));
    }
    let Some(at) = failed_at else {
        return (true, results);
    };
    s.org.rollback_to(savepoint);
    // As a Composite under allOrNone answers ("Composite Subrequest
    // Result"): the nodes that had succeeded report the rollback, the
    // failing node keeps its own error.
    for r in results.iter_mut().take(at) {
        *r = halted(&r.0, HALTED);
    }
    (false, results)
}

/// A graph after the 14th failed one: none of its nodes runs.
fn halted_graph(graph: &Graph) -> Vec<NodeResult> {
    graph
        .nodes
        .iter()
        .map(|n| halted(&n.reference, HALTED_GRAPHS))
        .collect()
}

fn halted(reference: &str, message: &str) -> NodeResult {
    (
        reference.to_owned(),
        StatusCode::BAD_REQUEST,
        json!([{"errorCode": "PROCESSING_HALTED", "message": message}]),
        Map::new(),
    )
}

/// One node, its references resolved, through the same operations as the
/// direct routes and Composite.
fn run_node(
    s: &mut Inner,
    actor: &Actor,
    node: &Node,
    method: &str,
    url: &str,
    body: &Value,
) -> (StatusCode, Value, Map<String, Value>) {
    let api = node.version.as_str();
    let object = node.object.as_str();
    // The url was checked before any node ran; only a resolved reference
    // can have changed it, and only in the id or value segment.
    let (status, body) = match parse_target(method, url) {
        Ok((_, _, Target::Create)) => run_create(s, object, body, actor),
        Ok((_, _, Target::Row(id))) if method == "GET" => run_retrieve(s, object, &id, api),
        Ok((_, _, Target::Row(id))) => run_update(s, object, &id, body, actor),
        Ok((_, _, Target::ExternalId(field, value))) if method == "GET" => {
            run_retrieve_by_external_id(s, object, &field, &percent_decode(&value), api)
        }
        Ok((_, _, Target::ExternalId(field, value))) => {
            run_upsert(s, object, &field, &percent_decode(&value), body, actor, api)
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            json!([{"errorCode": "INVALID_FIELD", "message": message}]),
        ),
    };
    let headers = created_location(status, api, object, &body);
    (status, body, headers)
}
