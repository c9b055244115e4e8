//! What people hand the front ends, read the same way by both: setting changes as a flat
//! JSON object (`settings set --json`, `POST /api/v1/smtp`'s `changes`) and who stands at
//! the panel for a send (`send --user/--ldap-search`, the API's `user`/`ldap-search`).

use serde_json::{Map, Value};

use crate::bindings::mailer::WalkUpUser;

/// Who stands at the panel: `--user`, or the API's `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserKind {
    /// A user who logged in at the device.
    Authenticated,
    /// A guest user.
    Guest,
    /// Nobody logged in: authorization is not required.
    Unauthenticated,
}

/// How the Address Book (LDAP) search for an authenticated user went: `--ldap-search`, or
/// the API's `ldap-search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LdapSearch {
    Succeeded,
    Failed,
}

/// The user at the panel for the From Address policy (S7). An LDAP outcome belongs to an
/// authenticated user only: with anyone else it is refused, so a script never believes
/// it tested a case it did not.
pub fn walk_up_user(
    user: UserKind,
    ldap_search: Option<LdapSearch>,
) -> Result<WalkUpUser, &'static str> {
    match (user, ldap_search) {
        (UserKind::Authenticated, None | Some(LdapSearch::Succeeded)) => {
            Ok(WalkUpUser::AuthenticatedLdapSucceeded)
        }
        (UserKind::Authenticated, Some(LdapSearch::Failed)) => {
            Ok(WalkUpUser::AuthenticatedLdapFailed)
        }
        (UserKind::Guest, None) => Ok(WalkUpUser::Guest),
        (UserKind::Unauthenticated, None) => Ok(WalkUpUser::Unauthenticated),
        (UserKind::Guest | UserKind::Unauthenticated, Some(_)) => {
            Err("an LDAP search outcome applies only to an authenticated user")
        }
    }
}

/// A flat JSON object of setting keys as (key, value) pairs: values are strings, numbers
/// are taken as their text (ports). Any other value names its key as the error.
pub fn setting_changes(object: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    object
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            Value::Number(n) => Ok((key.clone(), n.to_string())),
            _ => Err(key.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ldap_outcome_is_refused_for_anyone_but_an_authenticated_user() {
        assert!(walk_up_user(UserKind::Guest, Some(LdapSearch::Failed)).is_err());
        assert!(walk_up_user(UserKind::Unauthenticated, Some(LdapSearch::Succeeded)).is_err());
        assert_eq!(
            walk_up_user(UserKind::Authenticated, Some(LdapSearch::Failed)),
            Ok(WalkUpUser::AuthenticatedLdapFailed)
        );
        assert_eq!(
            walk_up_user(UserKind::Authenticated, None),
            Ok(WalkUpUser::AuthenticatedLdapSucceeded)
        );
    }

    #[test]
    fn numbers_are_taken_as_text_and_anything_else_names_its_key() {
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"send-port": 587, "smtp-server": "a.example"}"#).unwrap();
        assert_eq!(
            setting_changes(&object).unwrap(),
            vec![
                ("send-port".to_owned(), "587".to_owned()),
                ("smtp-server".to_owned(), "a.example".to_owned())
            ]
        );
        let object: Map<String, Value> = serde_json::from_str(r#"{"receive-port": [1]}"#).unwrap();
        assert_eq!(setting_changes(&object), Err("receive-port".to_owned()));
    }
}
