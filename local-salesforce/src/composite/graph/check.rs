//! The checks of a Composite Graph request before any graph runs: its
//! shape, the node kinds a graph may use and the limits of "Composite Graph
//! Limits"
//! (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/resources_composite_graph_limits.htm).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::{
    Graph, Node, Target, MAX_DEPTH, MAX_GRAPHS, MAX_GRAPH_ID, MAX_NODES, MAX_NODE_KINDS,
    MIN_GRAPH_VERSION,
};
use crate::gate::MAX_VERSION;

/// The checks made on the whole request before any graph runs; a failure
/// is the top-level 400 with its error array. The pages name no error code
/// for these refusals: `INVALID_FIELD` for a malformed request and
/// `LIMIT_EXCEEDED` for a limit, as the Composite checks here answer.
pub(super) fn check_request(value: &Value) -> Result<Vec<Graph>, Value> {
    let bad = |code: &str, message: String| json!([{"message": message, "errorCode": code}]);
    let Some(graphs) = value.get("graphs").and_then(Value::as_array) else {
        return Err(bad("INVALID_FIELD", "graphs is required".into()));
    };
    if graphs.is_empty() {
        return Err(bad(
            "INVALID_FIELD",
            "graphs must hold at least one graph".into(),
        ));
    }
    if graphs.len() > MAX_GRAPHS {
        return Err(bad(
            "LIMIT_EXCEEDED",
            format!("A composite graph request cannot have more than {MAX_GRAPHS} graphs"),
        ));
    }
    let mut out = Vec::with_capacity(graphs.len());
    let mut graph_ids = HashSet::new();
    // referenceIds unique across the whole request, not only within their
    // graph: the pages' examples never repeat one, and a client that keeps
    // them unique passes either reading.
    let mut ref_ids = HashSet::new();
    let mut total = 0;
    for g in graphs {
        let id = g.get("graphId").and_then(Value::as_str).unwrap_or("");
        // "Using Composite Graphs": a graphId must be unique within the
        // request, begin with an alphanumeric character, be less than 40
        // characters and not contain a period.
        let valid = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && id.chars().count() <= MAX_GRAPH_ID
            && !id.contains('.');
        if !valid || !graph_ids.insert(id.to_owned()) {
            return Err(bad(
                "INVALID_FIELD",
                format!("Invalid or duplicate graphId '{id}'"),
            ));
        }
        let Some(nodes) = g.get("compositeRequest").and_then(Value::as_array) else {
            return Err(bad(
                "INVALID_FIELD",
                format!("compositeRequest is required in graph '{id}'"),
            ));
        };
        if nodes.is_empty() {
            return Err(bad("INVALID_FIELD", format!("graph '{id}' has no nodes")));
        }
        if nodes.len() > MAX_NODES {
            return Err(bad(
                "LIMIT_EXCEEDED",
                format!("Graph '{id}' cannot have more than {MAX_NODES} nodes"),
            ));
        }
        total += nodes.len();
        if total > MAX_NODES {
            return Err(bad(
                "LIMIT_EXCEEDED",
                format!("A composite graph request cannot have more than {MAX_NODES} nodes"),
            ));
        }
        let mut checked = Vec::with_capacity(nodes.len());
        for n in nodes {
            let node = check_node(n).map_err(|m| bad("INVALID_FIELD", m))?;
            if !ref_ids.insert(node.reference.clone()) {
                return Err(bad(
                    "INVALID_FIELD",
                    format!("Invalid or duplicate referenceId '{}'", node.reference),
                ));
            }
            checked.push(node);
        }
        let graph = Graph {
            id: id.to_owned(),
            nodes: checked,
        };
        if depth(&graph) > MAX_DEPTH {
            return Err(bad(
                "LIMIT_EXCEEDED",
                format!("Graph '{id}' is deeper than {MAX_DEPTH} nodes"),
            ));
        }
        out.push(graph);
    }
    let kinds: HashSet<_> = out.iter().flat_map(|g| &g.nodes).map(Node::kind).collect();
    if kinds.len() > MAX_NODE_KINDS {
        return Err(bad(
            "LIMIT_EXCEEDED",
            format!(
                "A composite graph request cannot use more than {MAX_NODE_KINDS} different nodes (API version, method and object); it uses {}",
                kinds.len()
            ),
        ));
    }
    Ok(out)
}

fn check_node(n: &Value) -> Result<Node, String> {
    let reference = n.get("referenceId").and_then(Value::as_str).unwrap_or("");
    let valid = reference
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("Invalid or duplicate referenceId '{reference}'"));
    }
    let method = n.get("method").and_then(Value::as_str).unwrap_or("");
    let url = n.get("url").and_then(Value::as_str).unwrap_or("");
    let (version, object, _) =
        parse_target(method, url).map_err(|m| format!("Node '{reference}': {m}"))?;
    Ok(Node {
        reference: reference.to_owned(),
        method: method.to_owned(),
        version,
        object,
        raw: n.clone(),
    })
}

/// A node's API version, object and target, or why the url is not one a
/// graph node may use ("Using Composite Graphs": only
/// `/sobjects/{sObject}` with POST, `/sobjects/{sObject}/{id}` with DELETE,
/// GET and PATCH, and `/sobjects/{sObject}/{field}/{externalId}` with
/// DELETE, GET, PATCH and POST; no query, no sObject Collections, no other
/// resource).
pub(super) fn parse_target(method: &str, url: &str) -> Result<(String, String, Target), String> {
    let unsupported = || {
        format!(
            "{method} {url} is not a node a composite graph supports: only sObject create, sObject Rows and sObject Rows by External ID"
        )
    };
    if url.contains('?') {
        return Err(unsupported());
    }
    let rest = url
        .strip_prefix("/services/data/v")
        .ok_or_else(unsupported)?;
    let (version, rest) = rest.split_once('/').ok_or_else(unsupported)?;
    let served = version.split_once('.').is_some_and(|(_, b)| b == "0")
        && version
            .parse::<f64>()
            .is_ok_and(|v| (MIN_GRAPH_VERSION..=MAX_VERSION).contains(&v));
    if !served {
        return Err(format!(
            "{url}: API version {version} does not serve composite graph nodes"
        ));
    }
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let target = match (method, segs.as_slice()) {
        ("POST", ["sobjects", _]) => Target::Create,
        ("GET" | "PATCH", ["sobjects", _, id]) => Target::Row((*id).to_owned()),
        ("GET" | "PATCH", ["sobjects", _, field, value]) => {
            Target::ExternalId((*field).to_owned(), (*value).to_owned())
        }
        // Documented node kinds this local Salesforce does not model: a
        // request using them is refused rather than answered wrongly.
        ("DELETE", ["sobjects", _, _] | ["sobjects", _, _, _])
        | ("POST", ["sobjects", _, _, _]) => {
            return Err(format!(
            "{method} {url}: this node kind is documented but not modelled by the local Salesforce"
        ))
        }
        _ => return Err(unsupported()),
    };
    Ok((version.to_owned(), segs[1].to_owned(), target))
}

/// The longest chain of references in a graph, counted in nodes (a graph
/// whose nodes refer to none has depth 1; "Maximum depth of a graph. 15"
/// is read as at most 15 nodes on any chain, the stricter of nodes and
/// edges). A reference to a later node, or to none, adds no depth: it fails
/// when its node runs.
fn depth(graph: &Graph) -> usize {
    let position: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.reference.as_str(), i))
        .collect();
    let mut depths: Vec<usize> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut names = Vec::new();
        referenced(&node.raw, &mut names);
        let d = names
            .iter()
            .filter_map(|n| position.get(n.as_str()))
            .filter(|&&j| j < i)
            .map(|&j| depths[j])
            .max()
            .unwrap_or(0);
        depths.push(d + 1);
    }
    depths.into_iter().max().unwrap_or(0)
}

/// The referenceIds named by `@{…}` in a node's url and body strings.
fn referenced(node: &Value, names: &mut Vec<String>) {
    let mut scan = |text: &str| {
        for part in text.split("@{").skip(1) {
            let end = part.find(['.', '[', '}']).unwrap_or(part.len());
            names.push(part[..end].to_owned());
        }
    };
    if let Some(url) = node.get("url").and_then(Value::as_str) {
        scan(url);
    }
    fn walk(v: &Value, scan: &mut dyn FnMut(&str)) {
        match v {
            Value::String(s) => scan(s),
            Value::Array(items) => items.iter().for_each(|i| walk(i, scan)),
            Value::Object(map) => map.values().for_each(|i| walk(i, scan)),
            _ => {}
        }
    }
    if let Some(body) = node.get("body") {
        walk(body, &mut scan);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(reference: &str, url: &str, body: Value) -> Value {
        json!({"method": "POST", "url": url, "referenceId": reference, "body": body})
    }

    #[test]
    fn node_urls_are_only_the_documented_sobject_forms() {
        let ok = [
            ("POST", "/services/data/v62.0/sobjects/Case"),
            ("GET", "/services/data/v62.0/sobjects/Case/@{c.id}"),
            (
                "PATCH",
                "/services/data/v50.0/sobjects/Case/500Wt0000000001AAA",
            ),
            ("PATCH", "/services/data/v62.0/sobjects/Case/Ext__c/42"),
            ("GET", "/services/data/v62.0/sobjects/Case/Ext__c/42"),
        ];
        for (method, url) in ok {
            assert!(parse_target(method, url).is_ok(), "{method} {url}");
        }
        let refused = [
            ("GET", "/services/data/v62.0/query?q=SELECT+Id+FROM+Case"),
            ("GET", "/services/data/v62.0/query/01gWt0000000001-2000"),
            ("POST", "/services/data/v62.0/composite/sobjects"),
            ("POST", "/services/data/v62.0/composite"),
            ("GET", "/services/data/v62.0/sobjects/Case/describe/x/y"),
            ("PATCH", "/services/data/v62.0/sobjects/Case"),
            (
                "POST",
                "/services/data/v62.0/sobjects/Case/500Wt0000000001AAA",
            ),
            ("post", "/services/data/v62.0/sobjects/Case"),
            ("POST", "/services/data/v49.0/sobjects/Case"),
            ("POST", "/services/data/v99.0/sobjects/Case"),
            ("POST", "sobjects/Case"),
            (
                "DELETE",
                "/services/data/v62.0/sobjects/Case/500Wt0000000001AAA",
            ),
        ];
        for (method, url) in refused {
            assert!(parse_target(method, url).is_err(), "{method} {url}");
        }
    }

    #[test]
    fn depth_counts_nodes_on_the_longest_chain_of_references() {
        let url = "/services/data/v62.0/sobjects/Case";
        let graph = |nodes: Vec<Value>| Graph {
            id: "g".into(),
            nodes: nodes.iter().map(|n| check_node(n).unwrap()).collect(),
        };
        let flat = graph(vec![node("a", url, json!({})), node("b", url, json!({}))]);
        assert_eq!(depth(&flat), 1);
        // a <- b <- c, and d refers to a only; a forward or unknown
        // reference adds nothing.
        let chain = graph(vec![
            node("a", url, json!({"x": "@{z.id}"})),
            node("b", url, json!({"ParentId": "@{a.id}"})),
            node("c", url, json!({"n": {"deep": ["x @{b.records[0].Id} y"]}})),
            json!({"method": "GET", "url": "/services/data/v62.0/sobjects/Case/@{a.id}",
                   "referenceId": "d"}),
        ]);
        assert_eq!(depth(&chain), 3);
    }
}
