//! Which attachment is downloaded and which is only linked, and why: the
//! media-host policy. Pure: the worker's download code asks [`allowed`] at
//! every hop and [`fate`] once per attachment, and only fetches and sends.
//!
//! Every URL is hostile: only `https` URLs (plain `http` only on a listed
//! loopback host) on a host listed in the WitiOp secret's `media_hosts`
//! are fetched, and never one carrying a user name or password.

use reqwest::Url;

use super::comments::AttachmentFate;
use crate::config::{is_loopback_host, MediaHost};
use crate::event::Attachment;

/// Why a file is not downloaded. The text goes into a comment or a log
/// line, so it names no URL and no credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not on a WitiOp media host")]
    HostNotAllowed,
    #[error("its address carries a user name or password")]
    Credentials,
    #[error("larger than the {} MB limit", .0 / (1024 * 1024))]
    TooLarge(u64),
}

/// What decides the fate of an attachment: the admin's `add_attachments`,
/// the WitiOp secret's `media_hosts` and the size limit.
#[derive(Debug, Clone, Copy)]
pub struct MediaPolicy<'a> {
    pub add_attachments: bool,
    /// `None`: nothing is downloaded, attachments are linked.
    pub hosts: Option<&'a [MediaHost]>,
    /// Largest file downloaded.
    pub max_bytes: u64,
}

impl MediaPolicy<'_> {
    /// Whether files are copied at all: `add_attachments` without
    /// `media_hosts` is read the safe way, as links only.
    pub fn copies_files(&self) -> bool {
        self.add_attachments && self.hosts.is_some()
    }
}

/// Whether `url` may be fetched with the API token: `https` (plain `http`
/// only on a loopback host), no userinfo, on a listed host and port.
pub fn allowed(hosts: Option<&[MediaHost]>, url: &Url) -> bool {
    let Some(hosts) = hosts else {
        return false;
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(is_loopback_host),
        _ => false,
    };
    scheme_ok && !has_userinfo(url) && hosts.iter().any(|h| h.matches(url))
}

/// Whether `url` names a user or a password. Such a URL is never fetched:
/// reqwest turns its userinfo into a Basic `Authorization` header, which
/// would travel beside the API token's Bearer one (two `Authorization`
/// headers), and whoever wrote the URL chose which credentials go where.
pub fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// What a comment says of `attachment`, decided before anything is written
/// or downloaded: linked (and copied later when files are copied), or not
/// fetched with the reason.
pub fn fate(policy: &MediaPolicy<'_>, attachment: &Attachment) -> AttachmentFate {
    match refusal(policy, attachment) {
        Some(why) => AttachmentFate::NotFetched(why.to_string()),
        None => AttachmentFate::Linked,
    }
}

/// Whether the worker downloads `attachment` and uploads it to the Case.
pub fn is_downloaded(policy: &MediaPolicy<'_>, attachment: &Attachment) -> bool {
    policy.copies_files() && refusal(policy, attachment).is_none()
}

fn refusal(policy: &MediaPolicy<'_>, attachment: &Attachment) -> Option<Refusal> {
    if !policy.copies_files() {
        return None;
    }
    let url = attachment.url.url();
    if has_userinfo(url) {
        return Some(Refusal::Credentials);
    }
    if !allowed(policy.hosts, url) {
        return Some(Refusal::HostNotAllowed);
    }
    if attachment.size.is_some_and(|s| s > policy.max_bytes) {
        return Some(Refusal::TooLarge(policy.max_bytes));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AttachmentUrl;

    const MB: u64 = 1024 * 1024;

    fn hosts(entries: &[&str]) -> Vec<MediaHost> {
        entries
            .iter()
            .map(|e| MediaHost::parse_entry(e).unwrap())
            .collect()
    }

    fn attachment(url: &str, size: Option<u64>) -> Attachment {
        Attachment {
            url: AttachmentUrl::parse(url).unwrap(),
            file_name: None,
            content_type: None,
            size,
        }
    }

    #[test]
    fn only_listed_hosts_over_https_are_fetched() {
        let listed = hosts(&["media.witiop.example", "127.0.0.1:9100"]);
        let cases = [
            ("https://media.witiop.example/a.pdf?sig=x", true),
            ("https://MEDIA.witiop.example:443/a.pdf", true),
            // No plain http off loopback.
            ("http://media.witiop.example/a.pdf", false),
            // Another port.
            ("https://media.witiop.example:8443/a.pdf", false),
            ("https://media.witiop.example.attacker.example/a", false),
            ("https://attacker.example/media.witiop.example", false),
            ("https://user@media.witiop.example/a", false),
            ("https://user:secret@media.witiop.example/a", false),
            // A password without a user name.
            ("https://:secret@media.witiop.example/a", false),
            ("http://127.0.0.1:9100/a", true),
            ("http://127.0.0.1:9101/a", false),
            ("http://169.254.169.254/latest/meta-data/", false),
            ("ftp://media.witiop.example/a", false),
        ];
        for (url, expected) in cases {
            let url_parsed = Url::parse(url).unwrap();
            assert_eq!(allowed(Some(&listed), &url_parsed), expected, "{url}");
            assert!(!allowed(None, &url_parsed), "no hosts, no fetch: {url}");
        }
    }

    #[test]
    fn each_attachment_is_linked_or_refused_with_its_reason() {
        let listed = hosts(&["media.witiop.example"]);
        let copying = MediaPolicy {
            add_attachments: true,
            hosts: Some(&listed),
            max_bytes: 50 * MB,
        };
        let no_hosts = MediaPolicy {
            hosts: None,
            ..copying
        };
        let links_only = MediaPolicy {
            add_attachments: false,
            ..copying
        };
        let linked = AttachmentFate::Linked;
        let refused = |r: Refusal| AttachmentFate::NotFetched(r.to_string());
        let ok = "https://media.witiop.example/a.pdf";
        let cases = [
            (copying, ok, None, linked.clone(), true),
            (copying, ok, Some(50 * MB), linked.clone(), true),
            (
                copying,
                ok,
                Some(50 * MB + 1),
                refused(Refusal::TooLarge(50 * MB)),
                false,
            ),
            (
                copying,
                "https://other.example/a.pdf",
                None,
                refused(Refusal::HostNotAllowed),
                false,
            ),
            (
                copying,
                "https://user:secret@media.witiop.example/a.pdf",
                None,
                refused(Refusal::Credentials),
                false,
            ),
            (
                copying,
                "https://:secret@media.witiop.example/a.pdf",
                None,
                refused(Refusal::Credentials),
                false,
            ),
            (
                copying,
                "https://user@media.witiop.example/a.pdf",
                None,
                refused(Refusal::Credentials),
                false,
            ),
            // Nothing is copied: every file is a plain link, whatever it is.
            (
                no_hosts,
                "https://other.example/a.pdf",
                Some(u64::MAX),
                linked.clone(),
                false,
            ),
            (
                links_only,
                "https://user:secret@media.witiop.example/a.pdf",
                None,
                linked.clone(),
                false,
            ),
            (links_only, ok, None, linked.clone(), false),
        ];
        for (policy, url, size, expected_fate, downloaded) in cases {
            let a = attachment(url, size);
            assert_eq!(fate(&policy, &a), expected_fate, "{url} {size:?}");
            assert_eq!(is_downloaded(&policy, &a), downloaded, "{url} {size:?}");
        }
    }

    #[test]
    fn refusals_read_as_the_comment_says_them() {
        assert_eq!(
            Refusal::Credentials.to_string(),
            "its address carries a user name or password"
        );
        assert_eq!(
            Refusal::TooLarge(50 * MB).to_string(),
            "larger than the 50 MB limit"
        );
    }
}
