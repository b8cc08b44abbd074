//! The JWT bearer grant: the assertion's checks, in the order Salesforce
//! can make them (the issuer names the app, the app holds the certificate
//! that verifies the signature, then the claims, then the user).
//!
//! The shape of the assertion is the one "OAuth 2.0 JWT Bearer Flow for
//! Server-to-Server Integration" describes
//! (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm):
//! header `{"alg":"RS256"}`, claims `iss` (the consumer key), `sub` (the
//! username), `aud` (the authorization server), `exp` (epoch seconds,
//! "within 3 minutes"), signed with the private key of the certificate
//! uploaded to the app. A refusal is a standard OAuth error response with
//! status 400 ("OAuth 2.0 Authorization Errors",
//! https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flow_errors.htm,
//! which points to RFC 7523 for the JWT bearer flow); the descriptions are
//! the ones Salesforce's token endpoint answers for each reason.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::Value;

use super::JwtBearer;
use crate::server::Inner;
use crate::CONSUMER_KEY;

/// The grant type's URN (RFC 7523, section 2.1).
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The page's limit on an assertion's life: `exp` "within 3 minutes". Read
/// strictly: an `exp` further ahead is refused, not shortened.
const MAX_LIFETIME_SECONDS: i64 = 180;

/// An OAuth error code and its description.
pub(crate) type Refusal = (&'static str, &'static str);

/// A signature or structure that does not hold (and an app without a
/// certificate, which verifies nothing).
const INVALID_ASSERTION: Refusal = ("invalid_grant", "invalid assertion");
/// `iss` is not the consumer key of any app: as for a wrong `client_id` in
/// the other flows.
const UNKNOWN_ISSUER: Refusal = ("invalid_client_id", "client identifier invalid");
const WRONG_AUDIENCE: Refusal = ("invalid_grant", "audience is invalid");
/// Salesforce's wording for an `exp` in the past.
const EXPIRED: Refusal = ("invalid_grant", "expired authorization code");
/// The user is unknown or not pre-authorised for the app: the flow needs
/// prior approval, which for a server is the admin's ("Admin approved users
/// are pre-authorized").
const NOT_APPROVED: Refusal = ("invalid_grant", "user hasn't approved this consumer");

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    aud: Value,
    exp: Option<i64>,
}

/// Reads a certificate in PEM (as uploaded to the app) into DER.
pub(crate) fn certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    webpki::EndEntityCert::try_from(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(der.to_vec())
}

fn decode<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| INVALID_ASSERTION)?;
    serde_json::from_slice(&bytes).map_err(|_| INVALID_ASSERTION)
}

/// The username an assertion speaks for, once every check but the user's
/// approval holds.
pub(crate) fn verify_assertion(app: &JwtBearer, assertion: &str) -> Result<String, Refusal> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(INVALID_ASSERTION);
    };
    let head: Header = decode(header)?;
    if head.alg != "RS256" {
        return Err(INVALID_ASSERTION);
    }
    let claims_of: Claims = decode(claims)?;
    if claims_of.iss != CONSUMER_KEY {
        return Err(UNKNOWN_ISSUER);
    }
    let certificate = app.certificate.as_deref().ok_or(INVALID_ASSERTION)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| INVALID_ASSERTION)?;
    let der = CertificateDer::from(certificate);
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| INVALID_ASSERTION)?;
    cert.verify_signature(
        webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        format!("{header}.{claims}").as_bytes(),
        &signature,
    )
    .map_err(|_| INVALID_ASSERTION)?;
    // One audience, as a string; RFC 7519 allows an array, the page shows
    // a single URL: read strictly.
    if claims_of.aud.as_str() != Some(app.audience.as_str()) {
        return Err(WRONG_AUDIENCE);
    }
    let now = chrono::Utc::now().timestamp() + app.clock_ahead;
    match claims_of.exp {
        Some(exp) if exp <= now => return Err(EXPIRED),
        None => return Err(EXPIRED),
        Some(exp) if exp > now + MAX_LIFETIME_SECONDS => return Err(INVALID_ASSERTION),
        Some(_) => {}
    }
    if claims_of.sub.is_empty() {
        return Err(NOT_APPROVED);
    }
    Ok(claims_of.sub)
}

/// The id of the user `username`, if the app's admin pre-authorised them.
/// An inactive user cannot log in by any flow: "authentication failure",
/// as for the password flow.
pub(crate) fn pre_authorised_user(s: &Inner, username: &str) -> Result<String, Refusal> {
    if !s.logins.jwt.pre_authorised.contains(username) {
        return Err(NOT_APPROVED);
    }
    let user = s
        .org
        .records
        .get("User")
        .and_then(|t| {
            t.values()
                .find(|u| u.get("Username").and_then(Value::as_str) == Some(username))
        })
        .ok_or(NOT_APPROVED)?;
    if user.get("IsActive") != Some(&Value::Bool(true)) {
        return Err(("invalid_grant", "authentication failure"));
    }
    user.get("Id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(NOT_APPROVED)
}
