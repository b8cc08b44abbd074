//! Attachments: downloaded from WitiOp to a spool file, then streamed to
//! Salesforce as ContentVersions on the Case. A file that cannot be fetched
//! never blocks the Case: its comment says why and links it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::error::RecordError;
use super::Worker;
use crate::case::{self, AttachmentFate};
use crate::event::{Attachment, CloseEvent};
use crate::salesforce::records::{case_files_query, FileRow};
use crate::salesforce::SalesforceClient;

/// Salesforce's limit for a multipart ContentVersion.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an attachment could not be taken from WitiOp. Its text goes into the
/// comment, so it names no URL and no credential.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    #[error("larger than Salesforce's 2 GB file limit")]
    TooLarge,
    #[error("download failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("WitiOp answered HTTP {0}")]
    Status(u16),
    #[error("download interrupted: {0}")]
    Interrupted(#[source] reqwest::Error),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
}

/// An attachment downloaded to the spool directory, or why it could not be.
pub(crate) struct Spooled {
    message: usize,
    attachment: usize,
    key: String,
    /// `None` inside `Ok`: already uploaded by an earlier run.
    status: Result<Option<SpoolFile>, DownloadError>,
}

struct SpoolFile {
    path: PathBuf,
    length: u64,
    file_name: String,
    content_type: String,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) fn has_attachments(event: &CloseEvent) -> bool {
    event
        .conversation
        .messages
        .iter()
        .any(|m| !m.attachments.is_empty())
}

/// What the comment of attachment `a` of message `m` says about it.
pub(crate) fn fate(add_attachments: bool, files: &[Spooled], m: usize, a: usize) -> AttachmentFate {
    if !add_attachments {
        return AttachmentFate::Linked;
    }
    match files.iter().find(|f| f.message == m && f.attachment == a) {
        Some(Spooled {
            status: Err(reason),
            ..
        }) => AttachmentFate::NotUploaded(reason.to_string()),
        _ => AttachmentFate::Uploaded,
    }
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

/// The keys of the files a Case already has.
pub(crate) async fn existing_file_keys(
    sf: &SalesforceClient,
    case_id: &str,
) -> Result<HashSet<String>, RecordError> {
    let rows: Vec<FileRow> = sf.query(&case_files_query(case_id)).await?;
    Ok(rows.into_iter().filter_map(|r| r.description).collect())
}

impl Worker {
    pub(crate) async fn fetch_attachments(
        &self,
        event: &CloseEvent,
        uploaded: &HashSet<String>,
    ) -> Vec<Spooled> {
        let mut out = Vec::new();
        for (m, message) in event.conversation.messages.iter().enumerate() {
            for (a, attachment) in message.attachments.iter().enumerate() {
                let key = file_key(event, m, a);
                let status = if uploaded.contains(&key) {
                    Ok(None)
                } else {
                    self.download(attachment, m, a).await.map(Some)
                };
                if let Err(reason) = &status {
                    tracing::warn!(conversation_id = %event.conversation.id, url = attachment.url, reason = %reason, "attachment not uploaded; the comment links to WitiOp");
                }
                out.push(Spooled {
                    message: m,
                    attachment: a,
                    key,
                    status,
                });
            }
        }
        out
    }

    async fn download(
        &self,
        attachment: &Attachment,
        m: usize,
        a: usize,
    ) -> Result<SpoolFile, DownloadError> {
        if attachment.size.is_some_and(|s| s > MAX_FILE_BYTES) {
            return Err(DownloadError::TooLarge);
        }
        let mut request = self.http.get(&attachment.url).timeout(DOWNLOAD_TIMEOUT);
        if let Some(token) = &self.witiop_api_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| DownloadError::Request(e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|l| l > MAX_FILE_BYTES)
        {
            return Err(DownloadError::TooLarge);
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
        let path = self.spool_dir.join(format!(
            "witiop-{}-{m}-{a}-{}",
            std::process::id(),
            next_spool_number()
        ));
        let mut spool = SpoolFile {
            path: path.clone(),
            length: 0,
            file_name: attachment
                .file_name
                .clone()
                .unwrap_or_else(|| case::comments::file_name_from_url(&attachment.url)),
            content_type,
        };
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = response.bytes_stream();
        let mut total: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| DownloadError::Interrupted(e.without_url()))?;
            total += chunk.len() as u64;
            if total > MAX_FILE_BYTES {
                return Err(DownloadError::TooLarge);
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        spool.length = total;
        Ok(spool)
    }

    pub(crate) async fn upload_attachments(
        &self,
        sf: &SalesforceClient,
        event: &CloseEvent,
        case_id: &str,
        files: &[Spooled],
    ) -> Result<usize, RecordError> {
        let mut uploaded = 0;
        for f in files {
            let Ok(Some(spool)) = &f.status else { continue };
            let entity = json!({
                "Title": spool.file_name,
                "PathOnClient": spool.file_name,
                "FirstPublishLocationId": case_id,
                "Description": f.key,
            });
            let path = spool.path.clone();
            let length = spool.length;
            sf.upload_content_version(
                &entity,
                &spool.file_name,
                &spool.content_type,
                length,
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
            tracing::debug!(conversation_id = %event.conversation.id, file = spool.file_name, "attachment uploaded");
        }
        Ok(uploaded)
    }
}

/// A spool file name unique within the process.
fn next_spool_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
