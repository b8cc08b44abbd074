//! Cutting text to a field's length without breaking a character.

/// At most `max` characters of `s`.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).collect()
    }
}
