//! Who owns a new Case, chosen among the users the worker's read found: the
//! agent's User (by e-mail), else the configured default owner, else the
//! API user. Pure: the read only fetches the candidates.
//!
//! The read returns only active Standard users (a portal or Chatter user can
//! share the agent's e-mail but may not own a Case), oldest first; the rules
//! below rely on that order to pick the oldest when several match.

/// A user the read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUser {
    pub id: super::UserId,
    pub email: Option<String>,
    pub username: Option<String>,
}

/// The agent's User among the users found, and how many had the e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentMatch<'a> {
    /// The oldest user with the agent's e-mail.
    pub chosen: Option<&'a OrgUser>,
    /// More than one: the worker logs that the oldest was used.
    pub candidates: usize,
}

/// The agent's User: the oldest one whose e-mail is the agent's, compared
/// without regard to case (Salesforce stores e-mails as typed).
pub fn agent_user<'a>(users: &'a [OrgUser], agent_email: &str) -> AgentMatch<'a> {
    let email = agent_email.to_lowercase();
    let mut matches = users.iter().filter(|u| {
        u.email
            .as_deref()
            .is_some_and(|e| e.to_lowercase() == email)
    });
    let chosen = matches.next();
    AgentMatch {
        chosen,
        candidates: usize::from(chosen.is_some()) + matches.count(),
    }
}

/// The user whose username is `username`: usernames are unique in
/// Salesforce and compared without regard to case.
pub fn user_named<'a>(users: &'a [OrgUser], username: &str) -> Option<&'a OrgUser> {
    let name = username.to_lowercase();
    users.iter().find(|u| {
        u.username
            .as_deref()
            .is_some_and(|n| n.to_lowercase() == name)
    })
}

/// The owner of a new Case (and, unless the admin chose the API user, of a
/// new Contact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseOwner<'a> {
    /// The agent of the conversation has an active User.
    Agent(&'a str),
    /// No agent User: the `default_owner_username` User.
    DefaultOwner(&'a str),
    /// Neither: no `OwnerId` is sent, so the Case stays with the API user
    /// (the worker logs a warning).
    ApiUser,
}

impl<'a> CaseOwner<'a> {
    /// The agent's User, else the default owner, else the API user.
    pub fn choose(agent_user: Option<&'a str>, default_owner: Option<&'a str>) -> Self {
        match (agent_user, default_owner) {
            (Some(agent), _) => Self::Agent(agent),
            (None, Some(owner)) => Self::DefaultOwner(owner),
            (None, None) => Self::ApiUser,
        }
    }

    /// The `OwnerId` to write; `None` for the API user.
    pub fn id(self) -> Option<&'a str> {
        match self {
            Self::Agent(id) | Self::DefaultOwner(id) => Some(id),
            Self::ApiUser => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: Option<&str>, username: Option<&str>) -> OrgUser {
        OrgUser {
            id: id.into(),
            email: email.map(Into::into),
            username: username.map(Into::into),
        }
    }

    #[test]
    fn the_oldest_user_with_the_agents_email_is_the_agents() {
        let users = [
            user(
                "005A",
                Some("Owner@Example.com"),
                Some("owner@example.com.org"),
            ),
            user(
                "005B",
                Some("agent@example.com"),
                Some("agent@example.com.org"),
            ),
            user(
                "005C",
                Some("AGENT@example.com"),
                Some("agent2@example.com.org"),
            ),
            user("005D", None, Some("integration@example.com.org")),
        ];
        let cases: [(&[OrgUser], &str, Option<&str>, usize); 5] = [
            (&users, "agent@example.com", Some("005B"), 2),
            (&users, "Agent@Example.COM", Some("005B"), 2),
            (&users, "owner@example.com", Some("005A"), 1),
            (&users, "nobody@example.com", None, 0),
            (&[], "agent@example.com", None, 0),
        ];
        for (users, email, chosen, candidates) in cases {
            let found = agent_user(users, email);
            assert_eq!(found.chosen.map(|u| u.id.as_str()), chosen, "{email}");
            assert_eq!(found.candidates, candidates, "{email}");
        }
    }

    #[test]
    fn usernames_match_without_regard_to_case() {
        let users = [
            user("005A", Some("a@example.com"), Some("Owner@Example.com.org")),
            user("005B", Some("b@example.com"), None),
        ];
        let cases = [
            ("owner@example.com.org", Some("005A")),
            ("OWNER@EXAMPLE.COM.ORG", Some("005A")),
            ("b@example.com", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                user_named(&users, name).map(|u| u.id.as_str()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_agent_owns_else_the_default_owner_else_the_api_user() {
        let cases = [
            (
                Some("005A"),
                Some("005D"),
                CaseOwner::Agent("005A"),
                Some("005A"),
            ),
            (Some("005A"), None, CaseOwner::Agent("005A"), Some("005A")),
            (
                None,
                Some("005D"),
                CaseOwner::DefaultOwner("005D"),
                Some("005D"),
            ),
            (None, None, CaseOwner::ApiUser, None),
        ];
        for (agent, default_owner, owner, id) in cases {
            let chosen = CaseOwner::choose(agent, default_owner);
            assert_eq!(chosen, owner, "{agent:?} {default_owner:?}");
            assert_eq!(chosen.id(), id, "{agent:?} {default_owner:?}");
        }
    }
}
