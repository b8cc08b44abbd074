//! The objects the org knows, their fields, and record ids.

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Id,
    Text(usize),
    /// A picklist stored as text of at most this length; restricted ones
    /// (`Org::picklists`) accept only their values.
    Picklist(usize),
    /// A Long Text Area: a length limit like `Text`, but SOQL can neither
    /// filter nor sort on it.
    LongText(usize),
    /// A text area whose limit is in bytes rather than characters (and which,
    /// like a Long Text Area, SOQL can neither filter nor sort on).
    TextBytes(usize),
    Bool,
    /// A Number field (double in the API).
    Number,
    DateTime,
    Ref(&'static str),
    Base64,
}

#[derive(Clone, Copy)]
pub(crate) struct Field {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) createable: bool,
    pub(super) updateable: bool,
    pub(super) required: bool,
}

pub(crate) const fn f(name: &'static str, kind: Kind, createable: bool, required: bool) -> Field {
    Field {
        name,
        kind,
        createable,
        updateable: createable,
        required,
    }
}

/// Writable only on insert, and only while the org lets the API set audit
/// fields (`Org::audit_fields_enabled`): never by an update, nor by an upsert
/// even when it ends up inserting ("Considerations and Activation of Create
/// Audit Fields in Salesforce", help article 000176484: "this only works for
/// INSERT, not UPSERT"; the same article lists the four fields).
pub(super) const AUDIT: [&str; 4] = [
    "CreatedById",
    "CreatedDate",
    "LastModifiedById",
    "LastModifiedDate",
];

/// An object's API name, id key prefix and fields; `object` in any case.
pub(super) fn schema(object: &str) -> Option<(&'static str, &'static str, Vec<Field>)> {
    use Kind::*;
    let common = || {
        vec![
            f("Id", Id, false, false),
            f("CreatedById", Ref("User"), false, false),
            f("CreatedDate", DateTime, false, false),
            f("LastModifiedById", Ref("User"), false, false),
            f("LastModifiedDate", DateTime, false, false),
        ]
    };
    let (name, prefix, mut fields) = match object.to_ascii_lowercase().as_str() {
        "user" => (
            "User",
            "005",
            vec![
                f("Username", Text(80), false, false),
                f("Email", Text(128), false, false),
                f("FirstName", Text(40), false, false),
                f("LastName", Text(80), false, false),
                f("Name", Text(121), false, false),
                f("IsActive", Bool, false, false),
                // A read-only picklist set by the licence ("User", Object
                // Reference for the Salesforce Platform,
                // sforce_api_objects_user.htm): Standard for a full
                // licence, PowerPartner, PowerCustomerSuccess, CsnOnly
                // (Chatter) and others for portal and Chatter users, who
                // may share an internal user's e-mail.
                f("UserType", Picklist(40), false, false),
                f("ProfileId", Ref("Profile"), false, false),
            ],
        ),
        // Setup objects, read-only here (their rows are the org's settings,
        // `org/setup.rs`), with the fields the Object Reference for the
        // Salesforce Platform documents for each: "Profile"
        // (sforce_api_objects_profile.htm), "PermissionSet"
        // (sforce_api_objects_permissionset.htm: Name, Label,
        // IsOwnedByProfile, ProfileId, one Permissions<Name> boolean a
        // permission), "PermissionSetAssignment"
        // (sforce_api_objects_permissionsetassignment.htm: AssigneeId,
        // PermissionSetId), "AssignmentRule"
        // (sforce_api_objects_assignmentrule.htm: Name, SobjectType,
        // Active), "DuplicateRule"
        // (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_objects_duplicaterule.htm:
        // DeveloperName, MasterLabel, SobjectType, SobjectSubtype,
        // IsActive, Language, NamespacePrefix).
        "profile" => ("Profile", "00e", vec![f("Name", Text(255), false, false)]),
        "permissionset" => (
            "PermissionSet",
            "0PS",
            vec![
                f("Name", Text(80), false, false),
                f("Label", Text(80), false, false),
                f("IsOwnedByProfile", Bool, false, false),
                f("ProfileId", Ref("Profile"), false, false),
                f("PermissionsCreateAuditFields", Bool, false, false),
            ],
        ),
        "permissionsetassignment" => (
            "PermissionSetAssignment",
            "0Pa",
            vec![
                f("AssigneeId", Ref("User"), false, false),
                f("PermissionSetId", Ref("PermissionSet"), false, false),
            ],
        ),
        "assignmentrule" => (
            "AssignmentRule",
            "01Q",
            vec![
                f("Name", Text(120), false, false),
                f("SobjectType", Picklist(40), false, false),
                f("Active", Bool, false, false),
            ],
        ),
        "duplicaterule" => (
            "DuplicateRule",
            "0Bm",
            vec![
                f("DeveloperName", Text(80), false, false),
                f("MasterLabel", Text(80), false, false),
                f("SobjectType", Picklist(40), false, false),
                f("SobjectSubtype", Picklist(255), false, false),
                f("IsActive", Bool, false, false),
                f("Language", Picklist(40), false, false),
                f("NamespacePrefix", Text(15), false, false),
            ],
        ),
        "contact" => (
            "Contact",
            "003",
            vec![
                f("FirstName", Text(40), true, false),
                f("LastName", Text(80), true, true),
                f("Name", Text(121), false, false),
                f("Phone", Text(40), true, false),
                f("MobilePhone", Text(40), true, false),
                f("Email", Text(80), true, false),
                f("Description", LongText(32000), true, false),
                f("OwnerId", Ref("User"), true, false),
                f("AccountId", Ref("Account"), true, false),
            ],
        ),
        // "Account" (sforce_api_objects_account.htm): Name is required;
        // Contact.AccountId refers to it ("Contact",
        // sforce_api_objects_contact.htm).
        "account" => (
            "Account",
            "001",
            vec![
                f("Name", Text(255), true, true),
                f("OwnerId", Ref("User"), true, false),
            ],
        ),
        "case" => (
            "Case",
            "500",
            vec![
                f("CaseNumber", Text(30), false, false),
                f("Subject", Text(255), true, false),
                f("Description", LongText(32000), true, false),
                f("Origin", Picklist(40), true, false),
                f("Status", Picklist(40), true, false),
                f("Priority", Picklist(40), true, false),
                f("OwnerId", Ref("User"), true, false),
                f("ContactId", Ref("Contact"), true, false),
            ],
        ),
        "casecomment" => (
            "CaseComment",
            "00a",
            vec![
                f("ParentId", Ref("Case"), true, true),
                f("CommentBody", TextBytes(4000), true, false),
                f("IsPublished", Bool, true, false),
            ],
        ),
        "contentversion" => (
            "ContentVersion",
            "068",
            vec![
                f("Title", Text(255), true, false),
                f("PathOnClient", Text(500), true, true),
                f("VersionData", Base64, true, false),
                f("FirstPublishLocationId", Id, true, false),
                f("ContentDocumentId", Id, false, false),
                f("ContentSize", Text(20), false, false),
                f("Description", Text(1000), true, false),
            ],
        ),
        _ => return None,
    };
    let mut all = common();
    all.append(&mut fields);
    // Parent and publication location cannot change once set.
    for field in &mut all {
        if matches!(
            field.name,
            "ParentId" | "FirstPublishLocationId" | "PathOnClient"
        ) {
            field.updateable = false;
        }
    }
    Some((name, prefix, all))
}

pub(super) fn key_prefix(object: &str) -> Option<&'static str> {
    schema(object).map(|(_, p, _)| p)
}

/// Appends Salesforce's 3-character case-safe suffix to a 15-character id.
pub(super) fn id18(id15: &str) -> String {
    const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut suffix = String::new();
    for chunk in id15.as_bytes().chunks(5) {
        let mut bits = 0;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        suffix.push(MAP[bits] as char);
    }
    format!("{id15}{suffix}")
}

/// The 18-character form of a 15- or 18-character id, if it is one.
pub(crate) fn normalize_id(id: &str) -> Option<String> {
    let ok = id.chars().all(|c| c.is_ascii_alphanumeric());
    match id.len() {
        15 if ok => Some(id18(id)),
        18 if ok && id18(&id[..15]) == id => Some(id.to_owned()),
        _ => None,
    }
}

/// Objects whose rows are the org's settings, computed rather than stored
/// (`org/setup.rs`), and never saved through the API here.
pub(super) const SETUP: [&str; 6] = [
    "User",
    "Profile",
    "PermissionSet",
    "PermissionSetAssignment",
    "AssignmentRule",
    "DuplicateRule",
];

/// The UserType values the User object reference documents (API 10.0+).
pub(crate) const USER_TYPES: [&str; 8] = [
    "Standard",
    "PowerPartner",
    "CSPLitePortal",
    "CustomerSuccess",
    "PowerCustomerSuccess",
    "CsnOnly",
    "Guest",
    "SelfService",
];
