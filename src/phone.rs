//! Customer numbers: normalisation and matching against phones stored in Salesforce.
//!
//! WhatsApp numbers reach us as E.164 (`+393331234567`) or close to it
//! (`393331234567`, `00393331234567`, with spaces or dashes). Salesforce stores
//! Contact phones exactly as someone typed them (`+39 333 123 4567`,
//! `333-123-4567`) and SOQL cannot compare numbers by value. So the lookup is
//! two-stage:
//!
//! 1. candidates: a query for the formats people commonly type (E.164,
//!    international, national, digits only, `00` prefix) plus a query for
//!    phones ending in the last four digits, which survive any formatting;
//! 2. verdict: each candidate's phone is parsed with libphonenumber, taking
//!    the customer's country as the default region (so a national `333-123-4567`
//!    is read as Italian for an Italian customer), and kept only when its E.164
//!    form equals the customer's.

use phonenumber::{country, Mode, PhoneNumber};

/// A customer number as received and, when it parses, as a phone number.
#[derive(Debug, Clone)]
pub struct CustomerNumber {
    pub raw: String,
    parsed: Option<PhoneNumber>,
}

impl CustomerNumber {
    pub fn parse(raw: &str) -> Self {
        Self {
            raw: raw.trim().to_owned(),
            parsed: parse_international(raw),
        }
    }

    /// E.164 when the number parses, the number as received otherwise.
    pub fn display(&self) -> String {
        self.e164().unwrap_or_else(|| self.raw.clone())
    }

    pub fn e164(&self) -> Option<String> {
        self.parsed
            .as_ref()
            .map(|n| n.format().mode(Mode::E164).to_string())
    }

    /// The formats a person is likely to have typed, for an exact SOQL `IN`.
    pub fn typed_variants(&self) -> Vec<String> {
        let mut out = vec![self.raw.clone()];
        let digits: String = self.raw.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            out.push(digits.clone());
        }
        if let Some(n) = &self.parsed {
            let e164 = n.format().mode(Mode::E164).to_string();
            let international = n.format().mode(Mode::International).to_string();
            let national = n.format().mode(Mode::National).to_string();
            let national_digits: String = national.chars().filter(char::is_ascii_digit).collect();
            out.push(format!("00{}", &e164[1..]));
            out.push(e164[1..].to_owned());
            out.push(international.replace(' ', "-"));
            out.push(international.replace(' ', ""));
            out.push(e164);
            out.push(international);
            out.push(national.replace(' ', "-"));
            out.push(national);
            out.push(national_digits);
        }
        out.sort();
        out.dedup();
        out.retain(|v| !v.is_empty());
        out
    }

    /// The last four digits, kept by any formatting, for a `LIKE` fallback.
    pub fn last_digits(&self) -> Option<String> {
        let digits: Vec<char> = self.raw.chars().filter(char::is_ascii_digit).collect();
        (digits.len() >= 6).then(|| digits[digits.len() - 4..].iter().collect())
    }

    /// Whether a phone as stored in Salesforce is this number.
    pub fn matches(&self, stored: &str) -> bool {
        let stored = stored.trim();
        if stored.is_empty() {
            return false;
        }
        match &self.parsed {
            Some(n) => {
                let region = n.country().id();
                parse_stored(stored, region).iter().any(|s| {
                    s.format().mode(Mode::E164).to_string()
                        == n.format().mode(Mode::E164).to_string()
                })
            }
            // Unparseable on our side: fall back to comparing digits.
            None => {
                let a: String = self.raw.chars().filter(char::is_ascii_digit).collect();
                let b: String = stored.chars().filter(char::is_ascii_digit).collect();
                !a.is_empty() && a == b
            }
        }
    }
}

/// WhatsApp numbers are international even without a `+`.
fn parse_international(raw: &str) -> Option<PhoneNumber> {
    let trimmed = raw.trim();
    let candidate = if let Some(rest) = trimmed.strip_prefix("00") {
        format!("+{rest}")
    } else if trimmed.starts_with('+') {
        trimmed.to_owned()
    } else {
        format!("+{trimmed}")
    };
    phonenumber::parse(None, &candidate)
        .ok()
        .filter(phonenumber::is_valid)
}

/// The readings of a stored phone: international when it says so; else
/// both as a national number of `region` and as digits that include the
/// country code without `+` (`393331234567` is ambiguous on its face).
fn parse_stored(stored: &str, region: Option<country::Id>) -> Vec<PhoneNumber> {
    let s = stored.trim();
    if s.starts_with('+') || s.starts_with("00") {
        return parse_international(s).into_iter().collect();
    }
    let national = region
        .and_then(|r| phonenumber::parse(Some(r), s).ok())
        .filter(phonenumber::is_valid);
    national.into_iter().chain(parse_international(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_the_same_number_match() {
        let n = CustomerNumber::parse("+393331234567");
        assert_eq!(n.display(), "+393331234567");
        for stored in [
            "+39 333 123 4567",
            "0039 333 1234567",
            "393331234567",
            "333-123-4567",
            "333 1234567",
            "+39-333-123-4567",
            "(+39) 333 123 4567",
        ] {
            assert!(n.matches(stored), "{stored}");
        }
        for other in [
            "+39 333 123 4568",
            "+44 333 123 4567",
            "",
            "4567",
            "+1 333 123 4567",
        ] {
            assert!(!n.matches(other), "{other}");
        }
    }

    #[test]
    fn numbers_arrive_in_several_shapes() {
        for raw in [
            "393331234567",
            "00393331234567",
            "+39 333 123 4567",
            " +39-333-123-4567 ",
        ] {
            assert_eq!(
                CustomerNumber::parse(raw).e164().as_deref(),
                Some("+393331234567"),
                "{raw}"
            );
        }
        let junk = CustomerNumber::parse("12");
        assert_eq!(junk.e164(), None);
        assert_eq!(junk.display(), "12");
    }

    #[test]
    fn variants_cover_common_typing() {
        let v = CustomerNumber::parse("+393331234567").typed_variants();
        for expected in [
            "+393331234567",
            "+39 333 123 4567",
            "393331234567",
            "00393331234567",
            "333 123 4567",
            "3331234567",
        ] {
            assert!(
                v.contains(&expected.to_owned()),
                "{expected} missing from {v:?}"
            );
        }
        assert_eq!(
            CustomerNumber::parse("+393331234567")
                .last_digits()
                .as_deref(),
            Some("4567")
        );
    }
}
