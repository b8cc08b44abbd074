//! The page shown while a Case does not exist yet: self-contained (no
//! external assets), readable on a phone, refreshing every 2 seconds for 2
//! minutes, then saying the Case will appear in Salesforce when ready.

use std::time::Duration;

/// How long the page keeps refreshing.
pub const PATIENCE: Duration = Duration::from_secs(120);
/// How often it refreshes.
pub const REFRESH_SECONDS: u64 = 2;

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The waiting page. `refresh_to` is the URL to reload (with the first
/// opening's time in it), `None` once the patience is spent.
pub fn waiting(conversation_id: &str, refresh_to: Option<&str>) -> String {
    let id = escape(conversation_id);
    let (meta, message) = match refresh_to {
        Some(url) => (
            format!(
                "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS};url={}\">",
                escape(url)
            ),
            format!(
                "<p>The Case for conversation {id} is being created in Salesforce.</p>\
                 <p>This page opens it as soon as it exists.</p>"
            ),
        ),
        None => (
            String::new(),
            format!(
                "<p>The Case for conversation {id} is not in Salesforce yet.</p>\
                 <p>It will appear there when it is ready; this page no longer refreshes. \
                 Open the link again later, or search Salesforce for the conversation number.</p>"
            ),
        ),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{meta}\
         <title>Case for conversation {id}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:32rem;padding:0 1rem;line-height:1.5;color:#1b1b1b}}h1{{font-size:1.25rem}}</style>\
         </head><body><h1>Case for conversation {id}</h1>{message}</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_refreshes_then_stops_and_escapes_the_id() {
        let page = waiting("<b>1793</b>", Some("/witiop/cases/1793?n=1&sig=x&since=5"));
        assert!(page.contains("<html lang=\"en\">"));
        assert!(page.contains("content=\"2;url=/witiop/cases/1793?n=1&amp;sig=x&amp;since=5\""));
        assert!(page.contains("&lt;b&gt;1793&lt;/b&gt;") && !page.contains("<b>1793"));
        assert!(
            !page.contains("http://") && !page.contains("src="),
            "no external assets"
        );
        let done = waiting("1793", None);
        assert!(
            !done.contains("http-equiv") && done.contains("will appear there when it is ready")
        );
    }
}
