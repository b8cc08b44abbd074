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
use sha2::Digest;

/// One customer, one key, whatever the spelling of their number: the FIFO
/// message group the webhook gives their conversations (so SQS never hands
/// two of them to two instances at once), the worker's grouping of a batch,
/// and the number the Contact match and the Subject read (libphonenumber
/// parses `+` and the key, so its reading is a function of the key). Two
/// spellings of one number (`+44 7911 123461`, `+44 (0)7911 123461`,
/// `0044-7911-123461`) are one key.
///
/// It is made without libphonenumber, whose metadata takes over 100 ms to
/// load and more for each new country: the webhook makes it on every
/// request and must start in milliseconds. The two tables below are
/// libphonenumber's own facts, checked against its metadata by a test, and
/// a property test shows the key equal to libphonenumber's E.164 digits for
/// every country's example numbers however they are spelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerKey(String);

impl CustomerKey {
    /// SQS allows 128 characters in a message group id.
    const MAX_CHARS: usize = 128;

    /// The key of a number as received.
    pub fn of(raw: &str) -> Self {
        let raw = raw.trim();
        let mut digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        // WhatsApp numbers are international: `00` is the international
        // prefix unless a `+` already says so.
        let plus = raw.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '+');
        if !plus.starts_with('+') && digits.starts_with("00") {
            digits.drain(..2);
        }
        // A trunk `0` written after the country code, as in `+44 (0)7911…`,
        // is no part of the number.
        if let Some(code) = calling_code(&digits) {
            if TRUNK_ZERO.binary_search(&code.1).is_ok() && digits[code.0..].starts_with('0') {
                digits.remove(code.0);
            }
        }
        if !digits.is_empty() && digits.len() <= Self::MAX_CHARS {
            Self(digits)
        } else {
            Self(
                sha2::Sha256::digest(raw.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The key as an international number, when it is one.
    fn international(&self) -> Option<String> {
        (self.0.len() <= 15 && self.0.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("+{}", self.0))
    }
}

impl std::fmt::Display for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The country calling code `digits` starts with, as (its length, its value).
/// No code is a prefix of another (ITU-T E.164), so at most one matches.
fn calling_code(digits: &str) -> Option<(usize, u16)> {
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        CALLING_CODES
            .binary_search(&code)
            .is_ok()
            .then_some((len, code))
    })
}

/// Every country calling code libphonenumber knows.
const CALLING_CODES: [u16; 207] = [
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54,
    55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211,
    212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298,
    299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377,
    378, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506,
    507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676,
    677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 850, 852, 853, 855,
    856, 880, 886, 960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976,
    977, 979, 992, 993, 994, 995, 996, 998,
];

/// The calling codes whose every country writes a trunk `0` before national
/// numbers (libphonenumber's `nationalPrefix`) and has no number that
/// starts with `0`: there libphonenumber drops a `0` after the code.
const TRUNK_ZERO: [u16; 103] = [
    20, 27, 31, 32, 33, 40, 41, 43, 44, 46, 49, 51, 53, 54, 55, 57, 58, 60, 61, 62, 63, 64, 66, 81,
    82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211, 212, 213, 218, 231, 232, 233, 234, 243, 249, 250,
    251, 252, 254, 255, 256, 260, 261, 262, 263, 264, 265, 291, 353, 355, 358, 359, 370, 373, 374,
    377, 380, 381, 382, 383, 385, 386, 387, 389, 421, 423, 508, 590, 591, 593, 594, 595, 596, 598,
    686, 850, 855, 856, 880, 886, 961, 962, 963, 964, 966, 967, 970, 971, 972, 976, 977, 994, 995,
    996,
];

/// A customer number as received, its key and, when libphonenumber reads
/// the key as a valid number, that number.
#[derive(Debug, Clone)]
pub struct CustomerNumber {
    pub raw: String,
    key: CustomerKey,
    parsed: Option<PhoneNumber>,
}

impl CustomerNumber {
    pub fn parse(raw: &str) -> Self {
        let key = CustomerKey::of(raw);
        let parsed = key.international().and_then(|n| parse_international(&n));
        Self {
            raw: raw.trim().to_owned(),
            key,
            parsed,
        }
    }

    /// The customer's key.
    pub fn key(&self) -> CustomerKey {
        self.key.clone()
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
        // As typed first (it may carry an extension), else as the digits.
        return parse_international(s)
            .or_else(|| {
                CustomerKey::of(s)
                    .international()
                    .and_then(|n| parse_international(&n))
            })
            .into_iter()
            .collect();
    }
    let national = region
        .and_then(|r| phonenumber::parse(Some(r), s).ok())
        .filter(phonenumber::is_valid);
    national.into_iter().chain(parse_international(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_number_is_one_key_however_it_is_spelled() {
        let key = CustomerNumber::parse("+447911123461").key();
        assert_eq!(key.as_str(), "447911123461");
        for spelling in [
            "+44 7911 123461",
            "+44 (0)7911 123461",
            "+44 07911 123461",
            "0044 7911 123461",
            "447911123461",
            "+44-7911-123461",
        ] {
            assert_eq!(CustomerNumber::parse(spelling).key(), key, "{spelling}");
            assert_eq!(
                crate::queue::GroupId::for_customer(spelling).as_str(),
                key.as_str(),
                "{spelling}"
            );
        }
        // Another number, another key.
        assert_ne!(CustomerNumber::parse("+44 7911 123462").key(), key);
        // What libphonenumber cannot read keeps its digits, less `00`.
        assert_eq!(CustomerNumber::parse("0012-34").key().as_str(), "1234");
        assert_eq!(CustomerNumber::parse("12-34").key().as_str(), "1234");
        assert_eq!(CustomerNumber::parse("no digits").key().as_str().len(), 64);
    }

    /// Every country's example numbers, with their E.164 form.
    fn examples() -> Vec<(u16, String, String)> {
        let mut out = Vec::new();
        for region in phonenumber::metadata::DATABASE.iter() {
            let d = region.descriptors();
            for kind in [d.mobile(), d.fixed_line()].into_iter().flatten() {
                let Some(example) = kind.example() else {
                    continue;
                };
                let canonical = format!("+{}{example}", region.country_code());
                if let Some(n) = parse_international(&canonical) {
                    let e164 = n.format().mode(Mode::E164).to_string();
                    out.push((region.country_code(), example.to_owned(), e164));
                }
            }
        }
        out
    }

    /// The tables are libphonenumber's facts: its calling codes, and the
    /// codes where every country's national prefix is `0` and no example
    /// number starts with `0`.
    #[test]
    fn the_tables_agree_with_libphonenumber() {
        use std::collections::BTreeMap;
        let mut regions: BTreeMap<u16, Vec<&phonenumber::metadata::Metadata>> = BTreeMap::new();
        for region in phonenumber::metadata::DATABASE.iter() {
            regions
                .entry(region.country_code())
                .or_default()
                .push(region);
        }
        let codes: Vec<u16> = regions.keys().copied().collect();
        assert_eq!(codes, CALLING_CODES);
        let trunk_zero: Vec<u16> = regions
            .iter()
            .filter(|(_, rs)| {
                rs.iter().all(|r| {
                    let d = r.descriptors();
                    let examples = [d.mobile(), d.fixed_line(), d.toll_free(), d.voip()];
                    r.national_prefix() == Some("0")
                        && !examples
                            .into_iter()
                            .flatten()
                            .filter_map(|k| k.example())
                            .any(|e| e.starts_with('0'))
                })
            })
            .map(|(code, _)| *code)
            .collect();
        assert_eq!(trunk_zero, TRUNK_ZERO);
    }

    fn spelling() -> impl Strategy<Value = (String, String)> {
        let examples = examples();
        (
            prop::sample::select(examples),
            prop::sample::select(vec!["+", "00", "", "+ ", "(+", "+("]),
            prop::sample::select(vec!["", "0", "(0)", " (0) ", "-0-"]),
            prop::collection::vec(prop::sample::select(vec!["", " ", "-", ".", " - "]), 12),
        )
            .prop_map(|((code, example, e164), prefix, trunk, separators)| {
                let close = if prefix.contains('(') { ")" } else { "" };
                let trunk = if TRUNK_ZERO.contains(&code) {
                    trunk
                } else {
                    ""
                };
                let mut spelled = format!("{prefix}{code}{close}{trunk}");
                for (i, digit) in example.chars().enumerate() {
                    spelled.push_str(separators[i % separators.len()]);
                    spelled.push(digit);
                }
                (e164, spelled)
            })
    }

    proptest! {
        /// Every country's example numbers, however spelled (`+` or `00` or
        /// neither, any punctuation, a trunk `0` where the country writes
        /// one), give libphonenumber's E.164 digits as the key, and the
        /// Contact match reads them as that number: the webhook's message
        /// group, the worker's grouping, the Contact match and the Subject
        /// cannot split one customer in two.
        #[test]
        fn spellings_of_one_number_share_its_key((e164, spelled) in spelling()) {
            let customer = CustomerNumber::parse(&spelled);
            let (key, read) = (customer.key(), customer.e164());
            prop_assert_eq!(key.as_str(), &e164[1..], "{}", spelled);
            prop_assert_eq!(read.as_deref(), Some(e164.as_str()), "{}", spelled);
            let group = crate::queue::GroupId::for_customer(&spelled);
            prop_assert_eq!(group.as_str(), &e164[1..]);
            prop_assert!(customer.matches(&e164));
        }

        /// And two numbers are never one key.
        #[test]
        fn different_numbers_have_different_keys((a, _) in spelling(), (b, _) in spelling()) {
            let (a, b) = (CustomerNumber::parse(&a), CustomerNumber::parse(&b));
            prop_assume!(a.e164().is_some() && b.e164().is_some());
            prop_assert_eq!(a.key() == b.key(), a.e164() == b.e164());
        }
    }

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
