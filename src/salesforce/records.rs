//! The records a conversation reads: Users, Contact candidates, its Case,
//! the Case's comments and files. SOQL is built here and nowhere else, every
//! value through [`super::escape`].

use serde::Deserialize;

use super::composite::{RefId, Subrequest};
use super::escape::{soql_like_suffix, soql_literal};
use crate::phone::CustomerNumber;

/// Reference ids of the read Composite's subrequests.
pub const USERS: RefId = RefId::named("users");
pub const CONTACTS: RefId = RefId::named("contacts");
pub const SIMILAR: RefId = RefId::named("similar");
pub const EXISTING: RefId = RefId::named("existing");
pub const COMMENTS: RefId = RefId::named("comments");

/// How the conversation's Case is recognised.
#[derive(Debug, Clone, Copy)]
pub enum CaseKey<'a> {
    /// The External ID field holding the conversation id.
    ExternalId { field: &'a str, value: &'a str },
    /// Its Subject `<number> [<conversation id>]`.
    Subject(&'a str),
}

impl<'a> CaseKey<'a> {
    /// The field the Case is found by.
    pub fn field(&self) -> &'a str {
        match self {
            Self::ExternalId { field, .. } => field,
            Self::Subject(_) => "Subject",
        }
    }

    /// The value it must hold.
    pub fn value(&self) -> &'a str {
        match self {
            Self::ExternalId { value, .. } => value,
            Self::Subject(subject) => subject,
        }
    }
}

/// What to look for.
pub struct ConversationReads<'a> {
    pub agent_email: &'a str,
    /// Lower-cased usernames whose ids are not cached yet.
    pub usernames: &'a [String],
    pub number: &'a CustomerNumber,
    pub case: CaseKey<'a>,
}

impl ConversationReads<'_> {
    /// The subrequests of one Composite answering all of it.
    pub fn subrequests(&self, data_path: &str) -> Vec<Subrequest> {
        let mut user_filter = format!("Email = {}", soql_literal(self.agent_email));
        if !self.usernames.is_empty() {
            let list: Vec<String> = self.usernames.iter().map(|u| soql_literal(u)).collect();
            user_filter = format!("({user_filter} OR Username IN ({}))", list.join(", "));
        }
        let mut reads = vec![Subrequest::query(
            data_path,
            USERS,
            // Only Standard users may own a Case or author as the agent: a
            // portal or Chatter user can share the agent's e-mail. Oldest
            // first: `crate::case::owner` picks the first that matches.
            &format!("SELECT Id, Email, Username FROM User WHERE IsActive = true AND UserType = 'Standard' AND {user_filter} ORDER BY CreatedDate, Id LIMIT 50"),
        )];
        let variants: Vec<String> = self
            .number
            .typed_variants()
            .iter()
            .map(|v| soql_literal(v))
            .collect();
        let list = variants.join(", ");
        reads.push(Subrequest::query(
            data_path,
            CONTACTS,
            &format!("SELECT Id, Phone, MobilePhone FROM Contact WHERE Phone IN ({list}) OR MobilePhone IN ({list}) ORDER BY CreatedDate, Id LIMIT 200"),
        ));
        if let Some(last) = self.number.last_digits() {
            let like = soql_like_suffix(&last);
            reads.push(Subrequest::query(
                data_path,
                SIMILAR,
                &format!("SELECT Id, Phone, MobilePhone FROM Contact WHERE Phone LIKE {like} OR MobilePhone LIKE {like} ORDER BY CreatedDate, Id LIMIT 200"),
            ));
        }
        reads.push(Subrequest::query(
            data_path,
            EXISTING,
            &case_lookup_query(self.case),
        ));
        // Resolved by Salesforce only when the Case exists; otherwise this
        // subrequest fails on its reference, which means "no comments".
        reads.push(Subrequest::query_with_references(
            data_path,
            COMMENTS,
            &format!(
                "SELECT CommentBody FROM CaseComment WHERE ParentId = '{}'",
                EXISTING.at("records[0].Id")
            ),
        ));
        reads
    }
}

/// Rows one batch query may return and still be read whole: one page of a
/// REST query (help article 000386264, "Maximum number of rows returned by
/// SOQL queries over the REST API"). A batch read that fills it is not
/// trusted to be complete: its conversations are read one by one instead.
pub const BATCH_ROWS: usize = 2000;

/// The longest URI a subrequest may carry: "In each REST call, the maximum
/// length for the combined URI and headers is 16,384 bytes" (help article
/// 000386264). Whether a Composite subrequest's URL is held to it is not
/// said; it is, here, with room left for the headers.
pub const MAX_QUERY_URI: usize = 12_000;

/// What a whole batch reads in one Composite: the agents' users, Contacts
/// by every customer's number, and the Cases the conversations may already
/// have. The same queries as [`ConversationReads`] with `IN` lists.
pub struct BatchReads<'a> {
    pub agent_emails: Vec<&'a str>,
    /// Lower-cased usernames whose ids are not cached yet.
    pub usernames: &'a [String],
    pub numbers: Vec<&'a CustomerNumber>,
    /// Every conversation's Case key, all of one kind.
    pub cases: Vec<CaseKey<'a>>,
}

impl BatchReads<'_> {
    /// Up to four query subrequests (Composite allows five).
    pub fn subrequests(&self, data_path: &str) -> Vec<Subrequest> {
        let list = |values: &mut dyn Iterator<Item = String>| -> String {
            let mut seen = std::collections::BTreeSet::new();
            values
                .filter(|v| seen.insert(v.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let emails = list(&mut self.agent_emails.iter().map(|e| soql_literal(e)));
        let mut user_filter = format!("Email IN ({emails})");
        if !self.usernames.is_empty() {
            let names = list(&mut self.usernames.iter().map(|u| soql_literal(u)));
            user_filter = format!("({user_filter} OR Username IN ({names}))");
        }
        let mut reads = vec![Subrequest::query(
            data_path,
            USERS,
            &format!("SELECT Id, Email, Username FROM User WHERE IsActive = true AND UserType = 'Standard' AND {user_filter} ORDER BY CreatedDate, Id LIMIT {BATCH_ROWS}"),
        )];
        let variants = list(
            &mut self
                .numbers
                .iter()
                .flat_map(|n| n.typed_variants())
                .map(|v| soql_literal(&v)),
        );
        reads.push(Subrequest::query(
            data_path,
            CONTACTS,
            &format!("SELECT Id, Phone, MobilePhone FROM Contact WHERE Phone IN ({variants}) OR MobilePhone IN ({variants}) ORDER BY CreatedDate, Id LIMIT {BATCH_ROWS}"),
        ));
        let suffixes: Vec<String> = {
            let mut seen = std::collections::BTreeSet::new();
            self.numbers
                .iter()
                .filter_map(|n| n.last_digits())
                .filter(|d| seen.insert(d.clone()))
                .map(|d| {
                    let like = soql_like_suffix(&d);
                    format!("Phone LIKE {like} OR MobilePhone LIKE {like}")
                })
                .collect()
        };
        if !suffixes.is_empty() {
            reads.push(Subrequest::query(
                data_path,
                SIMILAR,
                &format!("SELECT Id, Phone, MobilePhone FROM Contact WHERE {} ORDER BY CreatedDate, Id LIMIT {BATCH_ROWS}", suffixes.join(" OR ")),
            ));
        }
        reads.push(Subrequest::query(
            data_path,
            EXISTING,
            &cases_lookup_query(&self.cases),
        ));
        reads
    }
}

/// The Cases of several conversations, oldest first, with the value each
/// is keyed by.
fn cases_lookup_query(keys: &[CaseKey<'_>]) -> String {
    let field = keys.first().map_or("Subject", CaseKey::field);
    let values: Vec<String> = keys.iter().map(|k| soql_literal(k.value())).collect();
    format!(
        "SELECT Id, CaseNumber, {field} FROM Case WHERE {field} IN ({}) ORDER BY CreatedDate, Id LIMIT {BATCH_ROWS}",
        values.join(", ")
    )
}

/// The conversation's Case, the oldest if several.
pub fn case_lookup_query(key: CaseKey<'_>) -> String {
    let filter = match key {
        CaseKey::ExternalId { field, value } => format!("{field} = {}", soql_literal(value)),
        CaseKey::Subject(subject) => format!("Subject = {}", soql_literal(subject)),
    };
    format!("SELECT Id, CaseNumber FROM Case WHERE {filter} ORDER BY CreatedDate, Id LIMIT 1")
}

/// The files already on a Case, recognised by their Description.
pub fn case_files_query(case_id: &str) -> String {
    format!(
        "SELECT Description FROM ContentVersion WHERE FirstPublishLocationId = {}",
        soql_literal(case_id)
    )
}

/// Inside the write Composite: the new Case's number, through its reference.
pub fn case_number_query(data_path: &str, reference_id: RefId, case: &RefId) -> Subrequest {
    Subrequest::query_with_references(
        data_path,
        reference_id,
        &format!("SELECT CaseNumber FROM Case WHERE Id = '{}'", case.at("id")),
    )
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserRow {
    pub id: crate::case::UserId,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

impl From<UserRow> for crate::case::OrgUser {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            username: row.username,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaseRow {
    pub id: crate::case::CaseId,
    #[serde(default)]
    pub case_number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaseNumberRow {
    #[serde(default)]
    pub case_number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommentRow {
    #[serde(default)]
    pub comment_body: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileRow {
    #[serde(default)]
    pub description: Option<String>,
}
