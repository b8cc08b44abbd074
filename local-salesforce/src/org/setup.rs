//! The setup objects a client reads to learn how the org is configured:
//! profiles, permission sets and their assignments, Case assignment rules
//! and Contact duplicate rules. Their rows are computed from the org's
//! settings (`audit_fields_enabled`, `case_assignment_owner`,
//! `contact_duplicate_rule`), so they always say what the org enforces.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::schema::id18;
use super::Org;

/// The profile a user of this licence has: System Administrator for a full
/// licence, a portal or Chatter profile for the others (a user's profile
/// must match its licence, "Profile", Object Reference,
/// sforce_api_objects_profile.htm).
pub(super) fn profile_of(user_type: &str) -> String {
    let n = match user_type {
        "Standard" => 1,
        "CsnOnly" => 3,
        _ => 2,
    };
    id18(&format!("00eWt000000000{n}"))
}

const PROFILES: [(&str, &str); 3] = [
    ("1", "System Administrator"),
    ("2", "Customer Community User"),
    ("3", "Chatter Free User"),
];

/// The permission set that grants Create Audit Fields ("Set Audit Fields
/// upon Record Creation") when the org lets the API set audit fields.
const AUDIT_SET: &str = "WitiOp_Audit_Fields";

fn row(fields: Value) -> (String, Map<String, Value>) {
    let map = fields.as_object().cloned().unwrap_or_default();
    let id = map
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    (id, map)
}

impl Org {
    /// The rows of a setup object, or `None` for an object whose records
    /// are stored (`Org::records`).
    pub(super) fn setup_rows(&self, object: &str) -> Option<BTreeMap<String, Map<String, Value>>> {
        let rows: Vec<(String, Map<String, Value>)> = match object {
            "Profile" => PROFILES
                .iter()
                .map(|(n, name)| {
                    row(json!({"Id": id18(&format!("00eWt000000000{n}")), "Name": name}))
                })
                .collect(),
            // Every profile owns a permission set holding its permissions
            // ("PermissionSet": IsOwnedByProfile, ProfileId); none of the
            // profiles here grants Create Audit Fields, which a separate
            // permission set does.
            "PermissionSet" => {
                let mut sets: Vec<_> = PROFILES
                    .iter()
                    .map(|(n, _)| {
                        row(json!({
                            "Id": id18(&format!("0PSWt000000000{n}")),
                            "Name": format!("X00eWt000000000{n}"), "Label": format!("00eWt000000000{n}"),
                            "IsOwnedByProfile": true,
                            "ProfileId": id18(&format!("00eWt000000000{n}")),
                            "PermissionsCreateAuditFields": false,
                        }))
                    })
                    .collect();
                sets.push(row(json!({
                    "Id": id18("0PSWt0000000009"), "Name": AUDIT_SET,
                    "Label": "WitiOp Audit Fields", "IsOwnedByProfile": false,
                    "ProfileId": null, "PermissionsCreateAuditFields": true,
                })));
                sets
            }
            // A user is assigned its profile's permission set as well as
            // the ones given to it: "PermissionSet"
            // (sforce_api_objects_permissionset.htm) has clients tell the
            // two apart by IsOwnedByProfile, the stricter reading for a
            // client being that both appear ("PermissionSetAssignment",
            // sforce_api_objects_permissionsetassignment.htm). The API user
            // holds the audit set while the org lets it set audit fields.
            "PermissionSetAssignment" => {
                let mut out = Vec::new();
                for (id, user) in self.records.get("User").into_iter().flatten() {
                    let profile = user.get("ProfileId").and_then(Value::as_str).unwrap_or("");
                    let n = profile.get(14..15).unwrap_or("1");
                    out.push(row(json!({
                        "Id": id18(&format!("0PaWt{}", &id[5..15])),
                        "AssigneeId": id,
                        "PermissionSetId": id18(&format!("0PSWt000000000{n}")),
                    })));
                    if self.audit_fields_enabled && self.api_user.as_deref() == Some(id) {
                        out.push(row(json!({
                            "Id": id18(&format!("0PaWu{}", &id[5..15])),
                            "AssigneeId": id,
                            "PermissionSetId": id18("0PSWt0000000009"),
                        })));
                    }
                }
                out
            }
            "AssignmentRule" => vec![row(json!({
                "Id": id18("01QWt0000000001"), "Name": "Standard Case Assignment",
                "SobjectType": "Case", "Active": self.case_assignment_owner.is_some(),
            }))],
            "DuplicateRule" => vec![row(json!({
                "Id": id18("0BmWt0000000001"),
                "DeveloperName": "Standard_Contact_Duplicate_Rule",
                "MasterLabel": "Standard Contact Duplicate Rule",
                "SobjectType": "Contact", "SobjectSubtype": "None",
                "IsActive": self.contact_duplicate_rule,
                "Language": "en_US", "NamespacePrefix": null,
            }))],
            _ => return None,
        };
        Some(rows.into_iter().collect())
    }
}
