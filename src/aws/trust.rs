//! Which roots the AWS SDK trusts.
//!
//! The SDK only ever talks to AWS endpoints, whose certificates chain to the
//! five roots of Amazon Trust Services; Amazon recommends exactly these five
//! to relying parties with a custom trust store ("Trust store and pinning
//! recommendations", amazontrust.com/repository). Trusting them alone is the
//! narrower trust (it guards against mis-issuance by every other CA, not
//! against other holders of Amazon certificates: host names are still
//! verified), and it costs a cold start five certificates to parse instead of
//! the runtime's whole store (about 140: three milliseconds on the bench,
//! docs/benchmarks.md). The certificates in `amazon-trust-services.pem`
//! carry their SHA-256 fingerprints, to compare with the repository's.
//!
//! Only where that chain is known: the commercial regions and GovCloud.
//! Everywhere else the SDK's default (the platform's roots): the China
//! regions, operated apart from Amazon Trust Services; the European
//! Sovereign Cloud and the isolated partitions, with CAs of their own; behind
//! an `https` endpoint override outside `amazonaws.com`; and through a proxy,
//! which may inspect TLS with a root of its own. An `http` override (a local
//! emulator) uses no TLS.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

const AMAZON_TRUST_SERVICES: &str = include_str!("amazon-trust-services.pem");

/// The roots for a region and an endpoint override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roots {
    AmazonTrustServices,
    Platform,
}

pub(crate) fn roots(region: Option<&str>, endpoint_urls: &[String], proxied: bool) -> Roots {
    if proxied || !region.is_some_and(amazon_trust_region) {
        return Roots::Platform;
    }
    let foreign = endpoint_urls
        .iter()
        .any(|u| match reqwest::Url::parse(u.trim()) {
            Ok(url) => url.scheme() == "https" && !url.host_str().is_some_and(amazonaws_host),
            // The SDK refuses it anyway; nothing to save by trusting less.
            Err(_) => true,
        });
    if foreign {
        Roots::Platform
    } else {
        Roots::AmazonTrustServices
    }
}

/// A region of the commercial partition (`eu-west-1`, `il-central-1`) or of
/// GovCloud (`us-gov-west-1`); not `cn-north-1`, `eusc-de-east-1`,
/// `us-iso-east-1` or `eu-isoe-west-1`.
fn amazon_trust_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let word = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    match parts.as_slice() {
        ["us", "gov", direction, n] => word(direction) && number(n),
        [area, direction, n] => {
            area.len() == 2 && word(area) && *area != "cn" && word(direction) && number(n)
        }
        _ => false,
    }
}

/// Whether a host is `amazonaws.com` or below it (a final dot allowed).
fn amazonaws_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "amazonaws.com" || host.ends_with(".amazonaws.com")
}

/// The SDK's HTTPS client trusting Amazon Trust Services' roots only; in
/// all else the SDK's default client (aws-smithy-runtime's
/// `default_https_client`): rustls with aws-lc, the connector settings and
/// sleep of each client, a proxy from `HTTPS_PROXY`/`NO_PROXY`.
pub(crate) fn amazon_http_client() -> SharedHttpClient {
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES))
        .build()
        .expect("a TLS context of PEM certificates always builds");
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_roots_only_in_the_commercial_regions_and_govcloud() {
        for region in [
            "eu-west-1",
            "us-gov-west-1",
            "il-central-1",
            "ap-southeast-7",
        ] {
            assert_eq!(
                roots(Some(region), &[], false),
                Roots::AmazonTrustServices,
                "{region}"
            );
        }
        let elsewhere = [
            "cn-north-1",
            "cn-northwest-1",
            "eusc-de-east-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "EU-WEST-1",
            "",
        ];
        for region in elsewhere {
            assert_eq!(
                roots(Some(region), &[], false),
                Roots::Platform,
                "{region:?}"
            );
        }
        assert_eq!(roots(None, &[], false), Roots::Platform);
        assert_eq!(
            roots(Some("eu-west-1"), &[], true),
            Roots::Platform,
            "through a proxy"
        );
    }

    #[test]
    fn amazon_roots_unless_an_endpoint_override_leaves_amazonaws() {
        let at = |url: &str| roots(Some("eu-west-1"), &[url.to_owned()], false);
        use Roots::{AmazonTrustServices as Amazon, Platform};
        let cases = [
            ("http://127.0.0.1:4566", Amazon),
            ("https://sqs.eu-west-1.amazonaws.com", Amazon),
            (
                "https://vpce-0a1b.sqs.eu-west-1.vpce.amazonaws.com/",
                Amazon,
            ),
            ("HTTPS://SQS.EU-WEST-1.AMAZONAWS.COM:443", Amazon),
            ("https://sqs.eu-west-1.amazonaws.com./", Amazon),
            ("https://proxy.corp.example", Platform),
            ("https://amazonaws.com.evil.example", Platform),
            ("https://notamazonaws.com", Platform),
            ("https://x@evil.example/.amazonaws.com", Platform),
            ("https://[::1]:4566", Platform),
            ("not a url", Platform),
        ];
        for (url, want) in cases {
            assert_eq!(at(url), want, "{url}");
        }
        let two = [
            "http://127.0.0.1:1".to_owned(),
            "https://proxy.example".to_owned(),
        ];
        assert_eq!(
            roots(Some("eu-west-1"), &two, false),
            Roots::Platform,
            "any foreign override"
        );
    }

    #[test]
    fn five_roots_and_a_client_that_parses_them() {
        assert_eq!(
            AMAZON_TRUST_SERVICES.matches("BEGIN CERTIFICATE").count(),
            5
        );
        // The SDK parses the roots when the first client is built, and
        // panics on a certificate it cannot read.
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
            .http_client(amazon_http_client())
            .build();
        let _ = aws_sdk_secretsmanager::Client::from_conf(config);
    }
}
