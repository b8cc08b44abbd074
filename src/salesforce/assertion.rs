//! The signed JWT of the OAuth 2.0 JWT bearer flow.
//!
//! Salesforce's page "OAuth 2.0 JWT Bearer Flow for Server-to-Server
//! Integration"
//! (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm)
//! fixes the shape: the header `{"alg":"RS256"}`; the claims `iss` (the
//! app's consumer key), `sub` (the username), `aud` (the authorization
//! server) and `exp` (seconds since the epoch, within 3 minutes); each part
//! base64url-encoded, joined by dots, and signed with RSA SHA256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::config::{is_loopback_host, PrivateKey};

/// How long an assertion is valid. The page asks for an expiry within
/// 3 minutes; a shorter life also limits what a leaked assertion is worth.
pub const ASSERTION_LIFETIME_SECONDS: i64 = 180;

const PRODUCTION: &str = "https://login.salesforce.com";
const SANDBOX: &str = "https://test.salesforce.com";

/// The claims Salesforce reads, and no other.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Claims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: String,
    pub exp: i64,
}

impl<'a> Claims<'a> {
    /// The claims of a login at `login_url`, made at `now` (epoch seconds).
    pub fn new(consumer_key: &'a str, username: &'a str, login_url: &str, now: i64) -> Self {
        Self {
            iss: consumer_key,
            sub: username,
            aud: audience(login_url),
            exp: now + ASSERTION_LIFETIME_SECONDS,
        }
    }
}

/// The `aud` claim for a token request sent to `login_url`.
///
/// The page lists the authorization server's URL as
/// `https://login.salesforce.com` or `https://test.salesforce.com` (and an
/// Experience Cloud site's URL, which this integration does not log in
/// through), whatever host the token request itself goes to: the request may
/// go to the org's My Domain, the audience stays one of the two. A sandbox's
/// My Domain (`*.sandbox.my.salesforce.com`) is a sandbox, so it is
/// `test`; every other host is production.
///
/// A loopback `login_url` is a local Salesforce standing in for the real
/// one: its audience is its own URL, the value it accepts, so that a local
/// run never signs an assertion a real org would take.
pub fn audience(login_url: &str) -> String {
    let host = reqwest::Url::parse(login_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if is_loopback_host(&host) {
        login_url.trim_end_matches('/').to_owned()
    } else if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        SANDBOX.to_owned()
    } else {
        PRODUCTION.to_owned()
    }
}

/// Why no assertion could be made.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the JWT bearer assertion")]
pub struct SigningFailed;

/// The compact JWS `header.claims.signature`.
pub fn sign(claims: &Claims<'_>, key: &PrivateKey) -> Result<String, SigningFailed> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let body = serde_json::to_vec(claims).map_err(|_| SigningFailed)?;
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let signature = key
        .sign_rs256(signing_input.as_bytes())
        .map_err(|_| SigningFailed)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../local-salesforce/src/test-keys/app.key.pem");

    #[test]
    fn audience_is_login_or_test_whatever_host_takes_the_request() {
        for (login_url, aud) in [
            ("https://login.salesforce.com", PRODUCTION),
            ("https://test.salesforce.com", SANDBOX),
            ("https://acme.my.salesforce.com", PRODUCTION),
            ("https://acme--uat.sandbox.my.salesforce.com", SANDBOX),
            ("https://ACME--UAT.SANDBOX.MY.SALESFORCE.COM", SANDBOX),
            ("http://127.0.0.1:8443", "http://127.0.0.1:8443"),
            ("http://localhost:8443/", "http://localhost:8443"),
        ] {
            assert_eq!(audience(login_url), aud, "{login_url}");
        }
    }

    #[test]
    fn claims_name_the_app_the_user_and_expire_within_three_minutes() {
        let c = Claims::new(
            "3MVG9key",
            "api@acme.example",
            "https://acme.my.salesforce.com",
            1_000,
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"iss": "3MVG9key", "sub": "api@acme.example",
                               "aud": "https://login.salesforce.com", "exp": 1_180})
        );
    }

    #[test]
    fn the_assertion_is_header_claims_and_an_rs256_signature() {
        let key = PrivateKey::from_pem(KEY).unwrap();
        let claims = Claims::new("k", "u", "https://login.salesforce.com", 1_000);
        let jwt = sign(&claims, &key).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"RS256"}"#
        );
        let body: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(body["iss"], "k");
        assert_eq!(body["exp"], 1_180);
        // A 2048-bit key signs 256 bytes; the local Salesforce's tests check
        // that the signature verifies against the certificate.
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
    }
}
