//! Signed Case links: `/witiop/cases/{conversation id}?n={digits}&sig=…`,
//! the signature an HMAC-SHA256 of both under the WitiOp secret's
//! `link_key`, so that only the webhook can mint a link and a link opens
//! one conversation's Case only.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The path prefix of the links route.
pub const PATH_PREFIX: &str = "/witiop/cases/";

fn mac(key: &SecretString, conversation_id: &str, digits: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    // A separator no id or digit string contains keeps the pair unambiguous.
    mac.update(conversation_id.as_bytes());
    mac.update(b"\n");
    mac.update(digits.as_bytes());
    mac
}

/// The signature of a link, base64url without padding.
pub fn sign(key: &SecretString, conversation_id: &str, digits: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(key, conversation_id, digits).finalize().into_bytes())
}

/// Whether `signature` is this link's, compared in constant time.
pub fn verify(key: &SecretString, conversation_id: &str, digits: &str, signature: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    mac(key, conversation_id, digits)
        .verify_slice(&bytes)
        .is_ok()
}

/// Percent-encodes a path segment: a conversation id is opaque text.
pub fn encode_segment(s: &str) -> String {
    crate::salesforce::resources::encode_component(s)
}

/// The link for a conversation on this API: `https://{domain}[/{stage}]/witiop/cases/…`.
/// HTTP APIs serve the `$default` stage without a path prefix.
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
    format!(
        "{scheme}://{domain}{stage}{PATH_PREFIX}{}?n={digits}&sig={}",
        encode_segment(conversation_id),
        sign(key, conversation_id, digits)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_opens_its_own_link_only() {
        let key = SecretString::from("k".repeat(32));
        let sig = sign(&key, "1793", "393331234567");
        assert!(verify(&key, "1793", "393331234567", &sig));
        assert!(!verify(&key, "1794", "393331234567", &sig));
        assert!(!verify(&key, "1793", "393331234568", &sig));
        assert!(
            !verify(&key, "17939", "3331234567", &sig),
            "no shifting across the separator"
        );
        assert!(!verify(
            &SecretString::from("x".repeat(32)),
            "1793",
            "393331234567",
            &sig
        ));
        assert!(!verify(&key, "1793", "393331234567", "not base64!"));
        assert!(!verify(&key, "1793", "393331234567", ""));
    }

    #[test]
    fn urls_carry_domain_stage_and_an_encoded_id() {
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
                "https://abc.execute-api.eu-west-1.amazonaws.com/witiop/cases/a%2Fb%201?n=39&sig="
            ),
            "{url}"
        );
        let staged = case_url(&key, "x.example", "prod", "1793", "39");
        assert!(
            staged.starts_with("https://x.example/prod/witiop/cases/1793?n=39&sig="),
            "{staged}"
        );
    }
}
