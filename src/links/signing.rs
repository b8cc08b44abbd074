//! Signed Case links:
//! `/witiop/cases/{conversation id}?n={digits}&exp={epoch seconds}&sig=…`,
//! the signature an HMAC-SHA256 of all three under the WitiOp secret's
//! `link_key`, so that only the webhook can mint a link, a link opens one
//! conversation's Case only, and it stops working after [`LIFETIME`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The path prefix of the links route.
pub const PATH_PREFIX: &str = "/witiop/cases/";

/// How long a link works after the webhook made it: long enough for an
/// agent to reopen a conversation's Case for weeks, short enough that a
/// leaked link does not work for ever (docs/operations.md §12.1).
pub const LIFETIME: Duration = Duration::from_secs(60 * 24 * 3600);

/// A link's parts as it arrives: what its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub conversation_id: &'a str,
    pub digits: &'a str,
    /// Epoch seconds after which the link no longer opens.
    pub expires: u64,
}

fn mac(key: &SecretString, link: Link<'_>) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    // A separator no id, digit string or number contains keeps the parts
    // unambiguous.
    mac.update(link.conversation_id.as_bytes());
    mac.update(b"\n");
    mac.update(link.digits.as_bytes());
    mac.update(b"\n");
    mac.update(link.expires.to_string().as_bytes());
    mac
}

/// The signature of a link, base64url without padding.
pub fn sign(key: &SecretString, link: Link<'_>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac(key, link).finalize().into_bytes())
}

/// Whether `signature` is this link's under one of `keys` (the current and
/// the previous `link_key`), each compared in constant time, and the link
/// has not expired at `now` (epoch seconds).
pub fn verify(keys: &[SecretString], link: Link<'_>, signature: &str, now: u64) -> bool {
    if link.expires <= now {
        return false;
    }
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    // Every key is tried, so timing does not tell which one matched.
    keys.iter().fold(false, |found, key| {
        found | mac(key, link).verify_slice(&bytes).is_ok()
    })
}

/// An expiry as it is written in a link: decimal digits only (no sign, no
/// spaces), so that one expiry has one spelling.
pub fn parse_expiry(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The path and query of a link (before any `since`).
pub fn path_and_query(link: Link<'_>, signature: &str) -> String {
    format!(
        "{PATH_PREFIX}{}?n={}&exp={}&sig={signature}",
        encode_segment(link.conversation_id),
        link.digits,
        link.expires
    )
}

/// Now, in epoch seconds.
pub fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Percent-encodes a path segment: a conversation id is opaque text.
pub fn encode_segment(s: &str) -> String {
    crate::salesforce::resources::encode_component(s)
}

/// The link for a conversation on this API: `https://{domain}[/{stage}]/witiop/cases/…`,
/// valid for [`LIFETIME`] from now. HTTP APIs serve the `$default` stage
/// without a path prefix.
pub fn case_url(
    key: &SecretString,
    domain: &str,
    stage: &str,
    conversation_id: &str,
    digits: &str,
) -> String {
    let stage = match stage {
        "" | "$default" => String::new(),
        s => format!("/{}", encode_segment(s)),
    };
    // Plain http only for a local run on this machine.
    let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
    let scheme = if crate::config::is_loopback_host(host) {
        "http"
    } else {
        "https"
    };
    let link = Link {
        conversation_id,
        digits,
        expires: epoch_seconds() + LIFETIME.as_secs(),
    };
    format!(
        "{scheme}://{domain}{stage}{}",
        path_and_query(link, &sign(key, link))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;

    fn link<'a>(conversation_id: &'a str, digits: &'a str, expires: u64) -> Link<'a> {
        Link {
            conversation_id,
            digits,
            expires,
        }
    }

    #[test]
    fn a_signature_opens_its_own_link_only() {
        let key = SecretString::from("k".repeat(32));
        let keys = [key.clone()];
        let exp = NOW + 60;
        let sig = sign(&key, link("1793", "393331234567", exp));
        assert!(verify(&keys, link("1793", "393331234567", exp), &sig, NOW));
        assert!(!verify(&keys, link("1794", "393331234567", exp), &sig, NOW));
        assert!(!verify(&keys, link("1793", "393331234568", exp), &sig, NOW));
        assert!(
            !verify(&keys, link("1793", "393331234567", exp + 1), &sig, NOW),
            "the expiry is signed"
        );
        assert!(
            !verify(&keys, link("17939", "3331234567", exp), &sig, NOW),
            "no shifting across the separator"
        );
        assert!(!verify(
            &[SecretString::from("x".repeat(32))],
            link("1793", "393331234567", exp),
            &sig,
            NOW
        ));
        assert!(!verify(
            &keys,
            link("1793", "393331234567", exp),
            "not base64!",
            NOW
        ));
        assert!(!verify(&keys, link("1793", "393331234567", exp), "", NOW));
        assert!(!verify(&[], link("1793", "393331234567", exp), &sig, NOW));
    }

    #[test]
    fn a_link_opens_until_its_expiry_only() {
        let key = SecretString::from("k".repeat(32));
        let l = link("1793", "39", NOW + 10);
        let sig = sign(&key, l);
        let keys = [key];
        assert!(verify(&keys, l, &sig, NOW + 9));
        assert!(!verify(&keys, l, &sig, NOW + 10));
        assert!(!verify(&keys, l, &sig, NOW + 11));
    }

    #[test]
    fn the_previous_key_still_opens_a_link() {
        let (old, new) = (
            SecretString::from("o".repeat(32)),
            SecretString::from("n".repeat(32)),
        );
        let l = link("1793", "39", NOW + 10);
        let sig = sign(&old, l);
        assert!(verify(&[new.clone(), old], l, &sig, NOW));
        assert!(!verify(&[new], l, &sig, NOW));
    }

    #[test]
    fn an_expiry_has_one_spelling() {
        assert_eq!(parse_expiry("1750000000"), Some(1_750_000_000));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1e9",
            "0x10",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_expiry(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_carry_domain_stage_an_encoded_id_and_the_expiry() {
        let before = epoch_seconds();
        let key = SecretString::from("k".repeat(32));
        let url = case_url(
            &key,
            "abc.execute-api.eu-west-1.amazonaws.com",
            "$default",
            "a/b 1",
            "39",
        );
        assert!(
            url.starts_with(
                "https://abc.execute-api.eu-west-1.amazonaws.com/witiop/cases/a%2Fb%201?n=39&exp="
            ),
            "{url}"
        );
        let staged = case_url(&key, "x.example", "prod", "1793", "39");
        assert!(
            staged.starts_with("https://x.example/prod/witiop/cases/1793?n=39&exp="),
            "{staged}"
        );
        let expires: u64 = url
            .split("&exp=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(
            (before..=epoch_seconds()).contains(&(expires - LIFETIME.as_secs())),
            "{expires}"
        );
    }
}
