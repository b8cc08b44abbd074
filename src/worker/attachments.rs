//! Attachments: after the Case and its comments are written, each file on a
//! WitiOp media host is downloaded to a bounded spool file and streamed to
//! Salesforce as a ContentVersion on the Case. Files never hold up the Case:
//! a file that cannot be fetched is logged and stays linked in its comment,
//! and a run that ends before every file is uploaded is resumed by the next
//! delivery, which uploads only the files the Case lacks.
//!
//! Every URL is hostile: only `https` URLs (plain `http` only on a listed
//! loopback host) on a host listed in the WitiOp secret's `media_hosts` are
//! fetched, redirects are followed by hand and only within that list, and
//! the API token goes nowhere else.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::LOCATION;
use reqwest::Url;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::error::RecordError;
use super::settings::MediaAccess;
use crate::case;
use crate::case::media::{self, MediaPolicy, Refusal};
use crate::config::CasePolicy;
use crate::event::{Attachment, CloseEvent};
use crate::salesforce::records::{case_files_query, FileRow};
use crate::salesforce::SalesforceClient;

/// Largest file downloaded, unless `MAX_ATTACHMENT_BYTES` says otherwise:
/// ten records at once fit in the worker's 1,024 MB of `/tmp` (the
/// template's `EphemeralStorage`; Lambda's default is 512 MB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;

/// Why a file is not downloaded, or why its download failed. The text goes
/// into a comment or a log line, so it names no URL and no credential.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("a redirect left the WitiOp media hosts")]
    RedirectNotAllowed,
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("download failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("WitiOp answered HTTP {0}")]
    Status(u16),
    #[error("download interrupted: {0}")]
    Interrupted(#[source] reqwest::Error),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
}

/// The client for downloads: it follows no redirect by itself, so each hop
/// is checked against the media hosts before the token is sent there.
pub fn download_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(DOWNLOAD_TIMEOUT)
        // A host that stops sending fails the download as soon as it stalls.
        .read_timeout(crate::salesforce::client::CALL_TIMEOUT)
        .user_agent(concat!("witiop-salesforce/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initialises")
}

/// What decides each attachment's fate under these settings.
pub(crate) fn media_policy<'a>(
    policy: &CasePolicy,
    media: &'a MediaAccess,
    max_bytes: u64,
) -> MediaPolicy<'a> {
    MediaPolicy {
        add_attachments: policy.add_attachments,
        hosts: media.hosts.as_deref(),
        max_bytes,
    }
}

/// The host of a URL, for logs: never its path or query (signed URLs).
fn host_of(url: &Url) -> &str {
    url.host_str().unwrap_or("(no host)")
}

/// The key stored in a ContentVersion's Description to recognise it later.
fn file_key(event: &CloseEvent, message: usize, attachment: usize) -> String {
    let m = &event.conversation.messages[message];
    format!(
        "WitiOp conversation {} message {} attachment {}",
        event.conversation.id,
        m.id.clone().unwrap_or_else(|| message.to_string()),
        attachment
    )
}

/// A downloaded file, removed when dropped.
struct SpoolFile {
    path: PathBuf,
    length: u64,
    content_type: String,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What copying files needs, kept per cold start.
pub struct Files {
    /// For attachment downloads: follows no redirect by itself.
    http: reqwest::Client,
    /// Largest attachment downloaded.
    pub(crate) max_file_bytes: u64,
    /// Where attachments wait between download and upload.
    spool_dir: PathBuf,
}

/// The files of one conversation, and the Case they go to.
pub(crate) struct Upload<'a> {
    pub sf: &'a SalesforceClient,
    pub policy: &'a CasePolicy,
    pub media: &'a MediaAccess,
    pub event: &'a CloseEvent,
    pub case_id: &'a str,
    /// A Case created by this run has no files yet: no need to ask.
    pub case_is_new: bool,
}

impl Files {
    pub fn new(max_file_bytes: u64) -> Self {
        Self {
            http: download_client(),
            max_file_bytes,
            spool_dir: std::env::temp_dir(),
        }
    }

    /// Uploads the files the Case lacks; returns how many were uploaded.
    /// A Salesforce failure fails the record (the next delivery resumes);
    /// a file that cannot be fetched is logged and skipped.
    pub(crate) async fn upload(&self, job: &Upload<'_>) -> Result<usize, RecordError> {
        let Upload {
            sf,
            policy,
            media,
            event,
            case_id,
            case_is_new,
        } = *job;
        let rules = media_policy(policy, media, self.max_file_bytes);
        let mut wanted = Vec::new();
        for (m, message) in event.conversation.messages.iter().enumerate() {
            for (a, attachment) in message.attachments.iter().enumerate() {
                if media::is_downloaded(&rules, attachment) {
                    wanted.push((file_key(event, m, a), m, a, attachment));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(0);
        }
        // A Case created by this run has no files yet: no need to ask.
        let existing: HashSet<String> = if case_is_new {
            HashSet::new()
        } else {
            let rows: Vec<FileRow> = sf.query(&case_files_query(case_id)).await?;
            rows.into_iter().filter_map(|r| r.description).collect()
        };
        let mut uploaded = 0;
        for (key, m, a, attachment) in wanted {
            if existing.contains(&key) {
                continue;
            }
            let spool = match self.download(media, attachment, m, a).await {
                Ok(s) => s,
                Err(reason) => {
                    tracing::warn!(
                        host = host_of(attachment.url.url()),
                        message = m,
                        attachment = a,
                        reason = %reason,
                        "attachment not copied to Salesforce; its comment links to WitiOp"
                    );
                    metrics::counter!("attachments_not_copied").increment(1);
                    continue;
                }
            };
            let file_name = attachment
                .file_name
                .clone()
                .unwrap_or_else(|| case::comments::file_name_from_url(&attachment.url));
            let entity = json!({
                "Title": file_name,
                "PathOnClient": file_name,
                "FirstPublishLocationId": case_id,
                "Description": key,
            });
            let path = spool.path.clone();
            sf.upload_content_version(
                &entity,
                &file_name,
                &spool.content_type,
                spool.length,
                move || {
                    // Re-opened on every attempt, so a retry streams the file again.
                    match std::fs::File::open(&path) {
                        Ok(file) => reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(
                            tokio::fs::File::from_std(file),
                        )),
                        Err(_) => reqwest::Body::from(Vec::new()),
                    }
                },
            )
            .await?;
            uploaded += 1;
        }
        Ok(uploaded)
    }

    /// Downloads one attachment to a spool file, following redirects only
    /// within the media hosts and stopping at the size limit.
    async fn download(
        &self,
        media: &MediaAccess,
        attachment: &Attachment,
        m: usize,
        a: usize,
    ) -> Result<SpoolFile, DownloadError> {
        let max = self.max_file_bytes;
        let mut url = attachment.url.url().clone();
        let mut hops = 0;
        let response = loop {
            if !media::allowed(media.hosts.as_deref(), &url) {
                return Err(if hops == 0 {
                    DownloadError::Refused(Refusal::HostNotAllowed)
                } else {
                    DownloadError::RedirectNotAllowed
                });
            }
            let mut request = self
                .http
                .get(url.clone())
                .timeout(crate::deadline::bound(DOWNLOAD_TIMEOUT));
            if let Some(token) = &media.api_token {
                request = request.bearer_auth(token.expose_secret());
            }
            let response = request
                .send()
                .await
                .map_err(|e| DownloadError::Request(e.without_url()))?;
            if !response.status().is_redirection() {
                break response;
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(DownloadError::TooManyRedirects);
            }
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or(DownloadError::RedirectNotAllowed)?;
            url = next;
        };
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status(status.as_u16()));
        }
        if response.content_length().is_some_and(|l| l > max) {
            return Err(DownloadError::Refused(Refusal::TooLarge(max)));
        }
        let content_type = attachment
            .content_type
            .clone()
            .or_else(|| {
                response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let mut spool = SpoolFile {
            path: self.spool_dir.join(format!(
                "witiop-{}-{m}-{a}-{}",
                std::process::id(),
                next_spool_number()
            )),
            length: 0,
            content_type,
        };
        let mut file = tokio::fs::File::create(&spool.path).await?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| DownloadError::Interrupted(e.without_url()))?;
            spool.length += chunk.len() as u64;
            if spool.length > max {
                return Err(DownloadError::Refused(Refusal::TooLarge(max)));
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(spool)
    }
}

/// A spool file name unique within the process.
fn next_spool_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_name_the_host_only() {
        assert_eq!(
            host_of(&Url::parse("https://media.witiop.example/x.pdf?sig=secret").unwrap()),
            "media.witiop.example"
        );
    }
}
