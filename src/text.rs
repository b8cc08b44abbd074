//! Cutting text to a field's length without breaking a character.
//!
//! Salesforce counts a text field's length in UTF-16 code units, so an emoji
//! counts 2 (Salesforce Help, "Character limits for text fields are counted
//! in UTF-16 code units", article 005166849); CommentBody's limit is kept in
//! bytes, the stricter reading.

/// At most `max` characters of `s`.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => s[..cut].to_owned(),
        None => s.to_owned(),
    }
}

/// At most `max` UTF-16 code units of `s`, cut at a character boundary.
pub(crate) fn truncate_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Length as Salesforce counts it.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_respect_characters_and_units() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hé", 5), "hé");
        assert_eq!(truncate_utf16("😀😀😀", 5), "😀😀");
        assert_eq!(truncate_utf16("a😀", 2), "a");
        assert_eq!(truncate_utf16("abc", 3), "abc");
        assert_eq!(truncate_bytes("aé", 2), "a");
        assert_eq!(truncate_bytes("aé", 3), "aé");
        assert_eq!(utf16_len("a😀é"), 4);
    }
}
