//! Which `instance_url` the client may send the access token to.
//!
//! The token, and every transcript after it, goes to whatever base URL the
//! session names. That URL comes from the login answer and from the shared
//! token cache, which anyone who can write that secret controls; so it is
//! accepted only on the hosts Salesforce serves orgs' APIs from, plus this
//! machine for local runs.

use reqwest::Url;

/// Host suffixes of Salesforce orgs' My Domain URLs. Every org has a My
/// Domain on `my.salesforce.com` ("A My Domain uses Salesforce domain
/// suffixes such as my.salesforce.com for your org's URLs",
/// https://help.salesforce.com/apex/HTViewHelpDoc?id=domain_name_overview.htm);
/// sandboxes, Developer Edition, scratch, patch, demo and Trailhead orgs put
/// their partition before it (`MyDomainName--SandboxName.sandbox.my.salesforce.com`,
/// `MyDomainName.develop.my.salesforce.com`, `MyDomainName.patch.my.salesforce.com`:
/// "Partitioned Domains",
/// https://help.salesforce.com/s/articleView?id=products.domain_name_partitioned_domains.htm&type=5,
/// and the `DomainPartition` values of `OrgDomainLog`,
/// https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_mydomainlog.htm).
/// Only suffixes a Salesforce page documents are listed: an org on another
/// Salesforce cloud is refused until its suffix is added here with its page.
const MY_DOMAIN_SUFFIXES: &[&str] = &["my.salesforce.com"];

/// Why an `instance_url` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceUrlError {
    #[error("is not a URL")]
    NotAUrl,
    #[error("must be a bare https origin (no user, path, query or fragment)")]
    NotAnOrigin,
    #[error("{0} is not a Salesforce My Domain host (*.my.salesforce.com) nor this machine")]
    NotSalesforce(String),
}

/// `url` as a base URL for data calls, when it is an `https` origin on a
/// Salesforce My Domain host, or `http(s)` on this machine when the login
/// URL is on this machine too (local runs; a deployed stack logs in to
/// Salesforce, so a cache naming loopback there is refused): returned
/// without a trailing `/`.
pub fn accepted_instance_url(url: &str, login_url: &str) -> Result<String, InstanceUrlError> {
    let parsed = Url::parse(url.trim()).map_err(|_| InstanceUrlError::NotAUrl)?;
    let bare = parsed.username().is_empty()
        && parsed.password().is_none()
        && matches!(parsed.path(), "" | "/")
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    if !bare {
        return Err(InstanceUrlError::NotAnOrigin);
    }
    let host = parsed.host_str().ok_or(InstanceUrlError::NotAnOrigin)?;
    let local_run = Url::parse(login_url.trim())
        .ok()
        .and_then(|l| l.host_str().map(crate::config::is_loopback_host))
        .unwrap_or(false);
    let loopback = local_run && crate::config::is_loopback_host(host);
    let ok = match parsed.scheme() {
        "https" => loopback || (parsed.port().is_none() && is_my_domain_host(host)),
        "http" => loopback,
        _ => false,
    };
    if !ok {
        return Err(InstanceUrlError::NotSalesforce(host.to_owned()));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// `host` is one or more DNS labels before a My Domain suffix.
fn is_my_domain_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    MY_DOMAIN_SUFFIXES.iter().any(|suffix| {
        host.strip_suffix(suffix)
            .and_then(|name| name.strip_suffix('.'))
            .is_some_and(|name| {
                !name.is_empty()
                    && name.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "http://127.0.0.1:8900";

    #[test]
    fn only_my_domain_hosts_and_this_machine_are_accepted() {
        let accepted = [
            (
                "https://acme.my.salesforce.com",
                "https://acme.my.salesforce.com",
            ),
            (
                "https://acme.my.salesforce.com/",
                "https://acme.my.salesforce.com",
            ),
            (
                "https://ACME.My.Salesforce.com",
                "https://acme.my.salesforce.com",
            ),
            (
                "https://acme--uat.sandbox.my.salesforce.com",
                "https://acme--uat.sandbox.my.salesforce.com",
            ),
            (
                "https://acme-dev-ed.develop.my.salesforce.com",
                "https://acme-dev-ed.develop.my.salesforce.com",
            ),
            (
                "https://site-ruby-1234.scratch.my.salesforce.com",
                "https://site-ruby-1234.scratch.my.salesforce.com",
            ),
            ("http://127.0.0.1:8443", "http://127.0.0.1:8443"),
            ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
            ("http://localhost:9000", "http://localhost:9000"),
            ("http://[::1]:9000", "http://[::1]:9000"),
        ];
        for (url, base) in accepted {
            assert_eq!(
                accepted_instance_url(url, LOCAL).as_deref(),
                Ok(base),
                "{url}"
            );
            if !url.to_ascii_lowercase().contains("salesforce.com") {
                assert!(
                    accepted_instance_url(url, "https://login.salesforce.com").is_err(),
                    "{url}: loopback only for a local login"
                );
            }
        }
        let refused = [
            "https://attacker.example",
            "https://my.salesforce.com",
            "https://acme.my.salesforce.com.attacker.example",
            "https://acmemy.salesforce.com",
            "https://acme.salesforce.com",
            "https://na30.salesforce.com",
            "https://acme.lightning.force.com",
            "http://acme.my.salesforce.com",
            "https://acme.my.salesforce.com:8443",
            "https://acme.my.salesforce.com/services/data",
            "https://acme.my.salesforce.com?x=1",
            "https://user:pw@acme.my.salesforce.com",
            "https://attacker.example#acme.my.salesforce.com",
            "http://169.254.169.254",
            "http://10.0.0.1:8080",
            "ftp://acme.my.salesforce.com",
            "acme.my.salesforce.com",
            "",
        ];
        for url in refused {
            assert!(accepted_instance_url(url, LOCAL).is_err(), "{url}");
        }
        assert_eq!(
            accepted_instance_url("https://attacker.example", LOCAL),
            Err(InstanceUrlError::NotSalesforce("attacker.example".into()))
        );
    }
}
