//! The `WITIOP_SECRET_ID` value: webhook token, API token, media hosts,
//! link key.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{ConfigError, Keys};

/// The `WITIOP_SECRET_ID` value.
#[derive(Debug, Clone)]
pub struct WitiopSecret {
    pub webhook_token: SecretString,
    /// Sent only to `media_hosts`, to download attachments.
    pub api_token: Option<SecretString>,
    /// Where attachments may be downloaded from; `None`: nowhere (links only).
    pub media_hosts: Option<Vec<MediaHost>>,
    /// Key of the signed Case links; `None`: no links.
    pub link_key: Option<SecretString>,
}

impl PartialEq for WitiopSecret {
    fn eq(&self, other: &Self) -> bool {
        let secret = |s: &Option<SecretString>| s.as_ref().map(|v| v.expose_secret().to_owned());
        self.webhook_token.expose_secret() == other.webhook_token.expose_secret()
            && secret(&self.api_token) == secret(&other.api_token)
            && self.media_hosts == other.media_hosts
            && secret(&self.link_key) == secret(&other.link_key)
    }
}

/// A `host` or `host:port` attachments may be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHost {
    /// Lower case, without brackets around an IPv6 address.
    pub host: String,
    /// `None`: the scheme's default port.
    pub port: Option<u16>,
}

impl MediaHost {
    /// `host` or `host:port`, as the secret lists them.
    pub fn parse_entry(entry: &str) -> Option<Self> {
        let url = reqwest::Url::parse(&format!("https://{}/", entry.trim())).ok()?;
        let host = url
            .host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        // Only a bare host or host:port: no credentials, path or query.
        let canonical = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        if !entry.trim().eq_ignore_ascii_case(&canonical) {
            return None;
        }
        Some(Self {
            host,
            port: url.port(),
        })
    }

    /// Whether `url` is on this host (its port, or the scheme's default).
    pub fn matches(&self, url: &reqwest::Url) -> bool {
        let host = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase());
        host.as_deref() == Some(self.host.as_str())
            && self.port.or_else(|| default_port(url)) == url.port_or_known_default()
    }
}

fn default_port(url: &reqwest::Url) -> Option<u16> {
    match url.scheme() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Whether `host` is this machine: the only place plain http may go.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl WitiopSecret {
    pub fn parse(secret_id: &str, text: &str) -> Result<Self, ConfigError> {
        let mut keys = Keys::parse(
            secret_id,
            text,
            &["webhook_token", "api_token", "media_hosts", "link_key"],
        )?;
        let webhook_token = keys.required_str("webhook_token")?;
        if webhook_token.len() < 16 {
            return Err(keys.invalid("webhook_token", "is shorter than 16 characters"));
        }
        let media_hosts = match keys.map.get("media_hosts") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut hosts = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str().and_then(MediaHost::parse_entry) {
                        Some(h) => hosts.push(h),
                        None => {
                            return Err(keys.invalid(
                                "media_hosts",
                                "must list hosts as \"host\" or \"host:port\"",
                            ))
                        }
                    }
                }
                Some(hosts)
            }
            Some(_) => return Err(keys.invalid("media_hosts", "must be a list of hosts")),
        };
        let link_key = keys.optional_str("link_key")?;
        if link_key.as_ref().is_some_and(|k| k.len() < 32) {
            return Err(keys.invalid("link_key", "is shorter than 32 characters"));
        }
        Ok(Self {
            webhook_token: SecretString::from(webhook_token),
            api_token: keys.optional_str("api_token")?.map(SecretString::from),
            media_hosts,
            link_key: link_key.map(SecretString::from),
        })
    }
}
