//! Escaping of every value the integration puts into SOQL.
//!
//! Values come from WitiOp (agent e-mails, phone numbers, conversation ids):
//! all of them go through these functions and nowhere else, so an injection
//! can only come from a bug here, where the tests are.

/// A SOQL string literal, quotes included: `O'Brien` → `'O\'Brien'`.
pub fn soql_literal(value: &str) -> String {
    quoted("", value, false)
}

/// A SOQL string literal for `LIKE`, where `%` and `_` are matched literally.
/// Add wildcards around the result's content yourself, e.g. with [`soql_like_suffix`].
pub fn soql_like_literal(value: &str) -> String {
    quoted("", value, true)
}

/// `'%value'`: matches fields ending with `value`, taken literally.
pub fn soql_like_suffix(value: &str) -> String {
    quoted("%", value, true)
}

/// `'` + `wildcard` (kept as a wildcard) + `value` escaped + `'`.
fn quoted(wildcard: &str, value: &str, like: bool) -> String {
    let mut out = String::with_capacity(value.len() + wildcard.len() + 2);
    out.push('\'');
    out.push_str(wildcard);
    push_escaped(&mut out, value, like);
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, value: &str, like: bool) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '%' if like => out.push_str("\\%"),
            '_' if like => out.push_str("\\_"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_table() {
        let cases = [
            ("plain", "'plain'"),
            ("O'Brien", r"'O\'Brien'"),
            (r"back\slash", r"'back\\slash'"),
            ("say \"hi\"", r#"'say \"hi\"'"#),
            ("100%_done", "'100%_done'"),
            ("+393331234567", "'+393331234567'"),
            ("émoji 😀", "'émoji 😀'"),
            ("line\nbreak\ttab", r"'line\nbreak\ttab'"),
            ("' OR Name != '", r"'\' OR Name != \''"),
        ];
        for (input, expected) in cases {
            assert_eq!(soql_literal(input), expected);
        }
        assert_eq!(soql_like_literal("100%_done"), r"'100\%\_done'");
        assert_eq!(soql_like_suffix("4567"), "'%4567'");
        assert_eq!(soql_like_suffix("a_b"), r"'%a\_b'");
    }
}
