//! `@{reference.path}` references inside a Composite.
//!
//! "Composite Subrequest" (REST API Developer Guide, "Composite Request
//! Body",
//! https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/requests_composite.htm):
//! "You can reference the referenceId in either the body or URL of a
//! subrequest", with `.` for a field and `[n]` for an element ("The []
//! operator indexes a JSON collection in the response", so `@{coll[0].id}`
//! names the first save result of an sObject Collections subrequest, whose
//! answer is an array). Salesforce substitutes them wherever they appear,
//! inside any string of the body, nested or mid-text, so a string a person
//! wrote that happens to contain `@{…}` is read as a reference. There is no
//! documented escape. Outside a Composite nothing reads them; Composite
//! Graph nodes read them the same way, within their own graph.

use std::collections::HashMap;

use serde_json::Value;

/// The subrequest's method, url and body with every reference replaced by
/// the earlier result it names; the error message when one names nothing.
pub(super) fn resolve(
    sub: &Value,
    outputs: &HashMap<String, Value>,
) -> Result<(String, String, Value), String> {
    // The method is case-sensitive ("Composite Subrequest": "Possible values
    // are DELETE, GET, PATCH, and POST (case-sensitive)"); an unknown one
    // finds no resource.
    let method = sub
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let url = sub.get("url").and_then(Value::as_str).unwrap_or("");
    let url = substitute(url, outputs)?;
    let mut body = sub.get("body").cloned().unwrap_or(Value::Null);
    resolve_value(&mut body, outputs)?;
    Ok((method, url, body))
}

/// Every string value, at any depth (keys are field names and stay as they
/// are).
fn resolve_value(v: &mut Value, outputs: &HashMap<String, Value>) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains("@{") => {
            *s = substitute(s, outputs)?;
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|i| resolve_value(i, outputs)),
        Value::Object(map) => map.values_mut().try_for_each(|i| resolve_value(i, outputs)),
        _ => Ok(()),
    }
}

fn substitute(text: &str, outputs: &HashMap<String, Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        // An `@{` that never closes cannot name a result: refused like any
        // other bad reference (the stricter reading; the guide is silent).
        let end = after.find('}').ok_or_else(|| {
            format!("Invalid reference specified. Unterminated reference: @{{{after}")
        })?;
        let expr = &after[..end];
        let value = lookup(expr, outputs).ok_or_else(|| {
            let reference = expr.split(['.', '[']).next().unwrap_or(expr);
            format!("Invalid reference specified. No value for {expr} found in {reference}")
        })?;
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `ref.field[0].Sub`: the value at that path in an earlier result.
fn lookup(expr: &str, outputs: &HashMap<String, Value>) -> Option<Value> {
    let mut parts = Vec::new();
    for seg in expr.split('.') {
        let mut seg = seg;
        let name_end = seg.find('[').unwrap_or(seg.len());
        parts.push(seg[..name_end].to_owned());
        seg = &seg[name_end..];
        while let Some(close) = seg.find(']') {
            parts.push(seg[1..close].to_owned());
            seg = &seg[close + 1..];
        }
    }
    let (first, path) = parts.split_first()?;
    let mut v = outputs.get(first)?.clone();
    for p in path.iter().filter(|p| !p.is_empty()) {
        v = match p.parse::<usize>() {
            Ok(i) => v.get(i)?.clone(),
            Err(_) => v.get(p.as_str())?.clone(),
        };
    }
    if v.is_null() {
        None
    } else {
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_in_any_string_of_the_body() {
        let outputs = HashMap::from([
            ("c".to_owned(), json!({"id": "500Wt0000000001AAA"})),
            (
                "q".to_owned(),
                json!({"records": [{"Id": "003Wt0000000001AAA"}], "totalSize": 1}),
            ),
        ]);
        let sub = json!({"method": "POST", "url": "/x/@{c.id}", "body": {
            "records": [{"ParentId": "@{c.id}", "CommentBody": "my code is @{q.records[0].Id}!"}],
            "n": "@{q.totalSize}", "@{keys}": "stay"
        }});
        let (_, url, body) = resolve(&sub, &outputs).unwrap();
        assert_eq!(url, "/x/500Wt0000000001AAA");
        assert_eq!(body["records"][0]["ParentId"], "500Wt0000000001AAA");
        assert_eq!(
            body["records"][0]["CommentBody"],
            "my code is 003Wt0000000001AAA!"
        );
        assert_eq!(body["n"], "1");
        assert_eq!(body["@{keys}"], "stay");
        for bad in ["@{x}", "@{c.nope}", "@{q.records[3].Id}", "a @{c.id"] {
            let sub = json!({"method": "POST", "url": "/x", "body": {"t": bad}});
            let err = resolve(&sub, &outputs).unwrap_err();
            assert!(
                err.starts_with("Invalid reference specified"),
                "{bad}: {err}"
            );
        }
    }
}
