//! Which new Cases of an SQS batch are written together, in one Composite,
//! and which go their own way.
//!
//! The worker writes a batch's new Cases in one `allOrNone` Composite: each
//! new Contact and each Case a subrequest of its own (where the assignment
//! and duplicate rule headers are documented to apply), their comments in
//! sObject Collections after them. Composite's limits bound what fits: 25
//! subrequests, of which at most 5 are sObject Collections or queries, and
//! 200 records per collection (REST API Developer Guide, "Composite",
//! resources_composite_composite.htm, and "sObject Collections",
//! resources_composite_sobjects_collections.htm).
//!
//! A conversation joins the shared write only when nothing about it needs
//! the per-conversation path: its Case is new, its text holds no `@{`
//! (Salesforce would read it as a reference, see `worker/write.rs`), its
//! plan succeeded, its conversation was not seen earlier in the batch, and
//! every earlier conversation of its customer joined too. The last rule keeps
//! a customer's order: what stays out is written after the shared write, so
//! nothing of a customer may be written before a conversation of theirs that
//! precedes it. A customer's conversations share one new Contact, as they
//! would one after the other.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{CasePlan, CaseWrites, ContactPlan};

/// Composite's limits ("Composite", resources_composite_composite.htm).
pub const MAX_SUBREQUESTS: usize = 25;
/// sObject Collections and queries among them.
pub const MAX_COLLECTIONS: usize = 5;
/// Records per sObject Collection.
pub const COLLECTION_SIZE: usize = 200;

/// What Salesforce would read as a Composite reference.
pub const REFERENCE_MARK: &str = "@{";

/// One conversation of the batch, in delivery order.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The records that must keep their order share a group (a customer).
    pub group: usize,
    /// The conversation's Case key, compared without regard to case as
    /// Salesforce compares text.
    pub key: &'a str,
    /// Its planned writes; `None` when planning failed.
    pub writes: Option<&'a CaseWrites>,
}

/// The Contact a member's Case points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberContact {
    /// One the org has (its id is in the member's plan).
    Existing,
    /// The `n`th new Contact of the write; `created` is false for a
    /// customer's later conversations, which point to the first one's.
    New { n: usize, created: bool },
}

/// A conversation written by the shared write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its index among the items.
    pub item: usize,
    pub contact: MemberContact,
}

/// The shared write: who joins, and how many subrequests it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchWrite {
    pub members: Vec<Member>,
    /// New Contacts, each a subrequest.
    pub new_contacts: usize,
    /// All members' comments, in member order.
    pub comments: usize,
}

impl BatchWrite {
    /// Collections the comments take.
    pub fn comment_collections(&self) -> usize {
        self.comments.div_ceil(COLLECTION_SIZE)
    }

    /// Every subrequest: Contacts, Cases, comment collections.
    pub fn subrequests(&self) -> usize {
        self.new_contacts + self.members.len() + self.comment_collections()
    }

    fn fits(&self) -> bool {
        self.comment_collections() <= MAX_COLLECTIONS && self.subrequests() <= MAX_SUBREQUESTS
    }
}

/// True when a string anywhere in `value` would be read as a reference.
pub fn has_reference_text(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(REFERENCE_MARK),
        Value::Array(items) => items.iter().any(has_reference_text),
        Value::Object(map) => map.values().any(has_reference_text),
        _ => false,
    }
}

/// Why a conversation cannot travel in a Composite, if it cannot.
fn composite_safe(writes: &CaseWrites) -> bool {
    let CasePlan::Create(new_case) = &writes.case else {
        return false;
    };
    let contact_text = match &new_case.contact {
        ContactPlan::Create(fields) => has_reference_text(fields),
        ContactPlan::Existing(_) => false,
    };
    !contact_text
        && !new_case.fields.values().any(has_reference_text)
        && !writes
            .comments
            .iter()
            .any(|c| c.body.contains(REFERENCE_MARK))
}

/// The members of the shared write, in delivery order (see the module doc).
pub fn plan_batch_write(items: &[BatchItem<'_>]) -> BatchWrite {
    let mut write = BatchWrite::default();
    // Customers with a conversation left out: the rest of theirs stay out.
    let mut closed: HashSet<usize> = HashSet::new();
    let mut keys: HashSet<String> = HashSet::new();
    // A customer's new Contact, made by their first member.
    let mut contact_of: HashMap<usize, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let first_of_key = keys.insert(item.key.to_lowercase());
        let joined = !closed.contains(&item.group)
            && first_of_key
            && item.writes.is_some_and(composite_safe)
            && try_join(&mut write, &mut contact_of, i, item);
        if !joined {
            closed.insert(item.group);
        }
    }
    write
}

/// Adds the item when it fits; leaves `write` as it was otherwise.
fn try_join(
    write: &mut BatchWrite,
    contact_of: &mut HashMap<usize, usize>,
    i: usize,
    item: &BatchItem<'_>,
) -> bool {
    let Some(writes) = item.writes else {
        return false;
    };
    let CasePlan::Create(new_case) = &writes.case else {
        return false;
    };
    let mut next = write.clone();
    let contact = match (&new_case.contact, contact_of.get(&item.group)) {
        (ContactPlan::Existing(_), _) => MemberContact::Existing,
        (ContactPlan::Create(_), Some(&n)) => MemberContact::New { n, created: false },
        (ContactPlan::Create(_), None) => {
            next.new_contacts += 1;
            MemberContact::New {
                n: next.new_contacts - 1,
                created: true,
            }
        }
    };
    next.members.push(Member { item: i, contact });
    next.comments += writes.comments.len();
    if !next.fits() {
        return false;
    }
    if let MemberContact::New { n, created: true } = contact {
        contact_of.insert(item.group, n);
    }
    *write = next;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{CommentDraft, ExistingCase, NewCase};
    use serde_json::{json, Map};

    fn comments(n: usize, text: &str) -> Vec<CommentDraft> {
        (0..n)
            .map(|i| CommentDraft {
                body: format!("{text} {i}"),
                created_by: None,
                created_date: None,
            })
            .collect()
    }

    fn new_case(contact: ContactPlan, comment_count: usize, text: &str) -> CaseWrites {
        let mut fields = Map::new();
        fields.insert("Subject".into(), json!(format!("+39 [{text}]")));
        CaseWrites {
            case: CasePlan::Create(NewCase {
                contact,
                fields,
                left_out: Vec::new(),
            }),
            comments: comments(comment_count, text),
        }
    }

    fn creating(n: usize) -> CaseWrites {
        new_case(ContactPlan::Create(json!({"LastName": "X"})), n, "hello")
    }

    fn existing_contact(n: usize) -> CaseWrites {
        new_case(ContactPlan::Existing("003A".into()), n, "hello")
    }

    fn item<'a>(group: usize, key: &'a str, writes: &'a CaseWrites) -> BatchItem<'a> {
        BatchItem {
            group,
            key,
            writes: Some(writes),
        }
    }

    fn joined(write: &BatchWrite) -> Vec<usize> {
        write.members.iter().map(|m| m.item).collect()
    }

    #[test]
    fn ten_new_conversations_of_ten_customers_share_one_write() {
        let w: Vec<CaseWrites> = (0..10).map(|_| creating(5)).collect();
        let keys: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let items: Vec<BatchItem> = (0..10).map(|i| item(i, &keys[i], &w[i])).collect();
        let write = plan_batch_write(&items);
        assert_eq!(joined(&write), (0..10).collect::<Vec<_>>());
        assert_eq!(write.new_contacts, 10);
        assert_eq!(write.subrequests(), 10 + 10 + 1);
    }

    #[test]
    fn a_customer_keeps_one_new_contact_and_their_order() {
        let (a, b, c) = (creating(2), creating(3), existing_contact(1));
        let other = new_case(ContactPlan::Create(json!({"LastName": "@{x}"})), 1, "hi");
        let items = [
            item(0, "1", &a),
            item(1, "2", &other), // `@{` in the Contact: stays out
            item(0, "3", &b),
            item(1, "4", &c), // after a conversation of theirs that stayed out
            item(2, "5", &c),
        ];
        let write = plan_batch_write(&items);
        assert_eq!(joined(&write), [0, 2, 4]);
        assert_eq!(
            write.members[1].contact,
            MemberContact::New {
                n: 0,
                created: false
            }
        );
        assert_eq!(write.new_contacts, 1);
    }

    #[test]
    fn what_stays_out_and_why() {
        let safe = creating(1);
        let with_mark = new_case(ContactPlan::Existing("003A".into()), 1, "code @{x}");
        let existing = CaseWrites {
            case: CasePlan::Existing(ExistingCase {
                id: "500A".into(),
                case_number: None,
            }),
            comments: comments(1, "x"),
        };
        let table: [(&str, BatchItem, bool); 5] = [
            ("a plain new conversation", item(0, "a", &safe), true),
            ("`@{` in a comment", item(1, "b", &with_mark), false),
            ("a Case that exists", item(2, "c", &existing), false),
            (
                "a plan that failed",
                BatchItem {
                    group: 3,
                    key: "d",
                    writes: None,
                },
                false,
            ),
            (
                "a second close of one conversation",
                item(4, "A", &safe),
                false,
            ),
        ];
        let items: Vec<BatchItem> = table.iter().map(|(_, i, _)| *i).collect();
        let write = plan_batch_write(&items);
        for (i, (what, _, expected)) in table.iter().enumerate() {
            assert_eq!(joined(&write).contains(&i), *expected, "{what}");
        }
    }

    #[test]
    fn comments_beyond_five_collections_stay_out() {
        let big = existing_contact(COLLECTION_SIZE * MAX_COLLECTIONS - 10);
        let small = existing_contact(11);
        let smaller = existing_contact(10);
        let items = [
            item(0, "a", &big),
            item(1, "b", &small),
            item(2, "c", &smaller),
        ];
        let write = plan_batch_write(&items);
        assert_eq!(joined(&write), [0, 2]);
        assert_eq!(write.comment_collections(), MAX_COLLECTIONS);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the batch, the shared write fits Composite's limits,
        /// holds each conversation once, and keeps every customer's order.
        #[test]
        fn the_shared_write_fits_and_keeps_order(
            spec in proptest::collection::vec(
                (0usize..4, 0usize..6, 0usize..450, proptest::prelude::any::<bool>(), 0u8..10),
                0..12,
            )
        ) {
            let writes: Vec<CaseWrites> = spec
                .iter()
                .map(|&(_, _, n, new_contact, _)| if new_contact { creating(n) } else { existing_contact(n) })
                .collect();
            let keys: Vec<String> = spec.iter().map(|&(_, k, ..)| format!("k{k}")).collect();
            let items: Vec<BatchItem> = spec
                .iter()
                .enumerate()
                .map(|(i, &(group, _, _, _, failed))| BatchItem {
                    group,
                    key: &keys[i],
                    writes: (failed != 0).then_some(&writes[i]),
                })
                .collect();
            let write = plan_batch_write(&items);
            proptest::prop_assert!(write.comment_collections() <= MAX_COLLECTIONS);
            proptest::prop_assert!(write.subrequests() <= MAX_SUBREQUESTS);
            let total: usize = write.members.iter().map(|m| writes[m.item].comments.len()).sum();
            proptest::prop_assert_eq!(total, write.comments);
            let mut seen = HashSet::new();
            for m in &write.members {
                proptest::prop_assert!(seen.insert(keys[m.item].clone()), "a key twice");
                // Every earlier conversation of the customer joined too.
                for earlier in 0..m.item {
                    if items[earlier].group == items[m.item].group {
                        proptest::prop_assert!(write.members.iter().any(|o| o.item == earlier));
                    }
                }
            }
            let created = write
                .members
                .iter()
                .filter(|m| matches!(m.contact, MemberContact::New { created: true, .. }))
                .count();
            proptest::prop_assert_eq!(created, write.new_contacts);
        }
    }
}
