//! SOSL, as far as the integration searches: contacts by phone number.

use serde_json::{json, Value};

use crate::org::{Org, SaveError};

/// `FIND {term} IN PHONE FIELDS RETURNING Contact(fields)`: phone fields are
/// matched on their digits, as Salesforce's phone search does.
pub(crate) fn sosl_phone_search(
    org: &Org,
    text: &str,
    api: &str,
    viewer: &str,
) -> Result<Value, SaveError> {
    let malformed = |m: &str| SaveError::new("MALFORMED_SEARCH", m.to_owned(), &[]);
    let rest = text
        .trim()
        .strip_prefix("FIND")
        .or_else(|| text.trim().strip_prefix("find"))
        .ok_or_else(|| malformed("expected FIND"))?
        .trim_start();
    let rest = rest
        .strip_prefix('{')
        .ok_or_else(|| malformed("expected {"))?;
    let mut term = String::new();
    let mut chars = rest.char_indices();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) => term.push(n),
                None => return Err(malformed("dangling backslash")),
            },
            '}' => {
                end = Some(i);
                break;
            }
            c if "&|!(){}[]^\"~*?:'+-".contains(c) => {
                return Err(malformed(&format!(
                    "unescaped reserved character '{c}' in search term"
                )));
            }
            c => term.push(c),
        }
    }
    let end = end.ok_or_else(|| malformed("expected }"))?;
    let tail = rest[end + 1..].trim();
    let upper = tail.to_ascii_uppercase();
    if !upper.starts_with("IN PHONE FIELDS RETURNING CONTACT(") || !tail.ends_with(')') {
        return Err(malformed(
            "only IN PHONE FIELDS RETURNING Contact(...) is supported",
        ));
    }
    let open = tail.find('(').unwrap_or(0);
    let fields = &tail[open + 1..tail.len() - 1];
    let digits: String = term.chars().filter(char::is_ascii_digit).collect();
    let all = org.query(&format!("SELECT {fields} FROM Contact"), api, Some(viewer))?;
    let ids = org.query(
        "SELECT Id, Phone, MobilePhone FROM Contact",
        api,
        Some(viewer),
    )?;
    let hits: Vec<Value> = all
        .into_iter()
        .zip(ids)
        .filter(|(_, phones)| {
            ["Phone", "MobilePhone"].iter().any(|f| {
                let d: String = phones[*f]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                !digits.is_empty()
                    && !d.is_empty()
                    && (d.ends_with(&digits) || digits.ends_with(&d))
            })
        })
        .map(|(r, _)| r)
        .collect();
    Ok(json!({"searchRecords": hits}))
}
