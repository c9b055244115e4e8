//! S7, the From Address policy at send time: who stands at the panel decides which of the
//! five policy fields applies, and that field alone decides whether this user may send
//! and whether they may edit From. A refusal names the field and the way out; it is given
//! before any connection.

use crate::diagnose::{Diagnostic, FROM_ADDRESS_PAGE, Severity};
use crate::settings::{FromAddressPolicy, SettingKey};

/// Who stands at the panel when a message is sent; mirrors `walk-up-user` in
/// `wit/mailer.wit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WalkUpUser {
    /// Authorization is not required: nobody logged in at the device.
    #[default]
    Unauthenticated,
    /// A guest user.
    Guest,
    /// An authenticated user whose Address Book (LDAP) search succeeded.
    AuthenticatedLdapSucceeded,
    /// An authenticated user whose Address Book (LDAP) search failed.
    AuthenticatedLdapFailed,
}

impl WalkUpUser {
    /// The field that decides whether this user may edit From.
    fn edit_field(self) -> SettingKey {
        match self {
            WalkUpUser::Unauthenticated => SettingKey::FromEditWithoutAuth,
            WalkUpUser::Guest => SettingKey::FromGuestEdit,
            WalkUpUser::AuthenticatedLdapSucceeded => SettingKey::FromAuthEditOnLdapSuccess,
            WalkUpUser::AuthenticatedLdapFailed => SettingKey::FromAuthEditOnLdapFailure,
        }
    }

    /// Who this is, for messages.
    fn describe(self) -> &'static str {
        match self {
            WalkUpUser::Unauthenticated => "a user at a device where authorization is not required",
            WalkUpUser::Guest => "a guest user",
            WalkUpUser::AuthenticatedLdapSucceeded => {
                "an authenticated user whose Address Book (LDAP) search succeeded"
            }
            WalkUpUser::AuthenticatedLdapFailed => {
                "an authenticated user whose Address Book (LDAP) search failed"
            }
        }
    }
}

/// Whether the policy field `key` is Yes.
fn allows(policy: &FromAddressPolicy, key: SettingKey) -> bool {
    match key {
        SettingKey::FromEditWithoutAuth => policy.edit_without_auth,
        SettingKey::FromGuestEdit => policy.guest_edit,
        SettingKey::FromAuthEditOnLdapSuccess => policy.auth_edit_on_ldap_success,
        SettingKey::FromAuthEditOnLdapFailure => policy.auth_edit_on_ldap_failure,
        SettingKey::FromAuthSendDespiteLdapFailure => policy.auth_send_despite_ldap_failure,
        _ => false,
    }
}

/// Decides S7 for `user` sending as `from` (`None`: the Device Email Address, which is
/// never an edit, in any letter case). `Err` is the refusal, naming the deciding field.
pub fn check(
    policy: &FromAddressPolicy,
    user: WalkUpUser,
    from: Option<&str>,
    device_email: &str,
) -> Result<(), Diagnostic> {
    if user == WalkUpUser::AuthenticatedLdapFailed
        && !allows(policy, SettingKey::FromAuthSendDespiteLdapFailure)
    {
        let field = SettingKey::FromAuthSendDespiteLdapFailure;
        return Err(Diagnostic::new(
            "send-refused-ldap-search-failed",
            Severity::Error,
            format!(
                "The message may not be sent: the Address Book (LDAP) search for this user failed, and [{}] is [No].",
                field.label()
            ),
            format!(
                "Log in again once the Address Book (LDAP) server answers, or ask the administrator to fix the LDAP search or set [{}] ({FROM_ADDRESS_PAGE}) to [Yes].",
                field.label(),
            ),
        ));
    }
    let edited = from.is_some_and(|from| !from.eq_ignore_ascii_case(device_email));
    let field = user.edit_field();
    if edited && !allows(policy, field) {
        return Err(Diagnostic::new(
            "from-edit-not-allowed",
            Severity::Error,
            format!(
                "The From field may not be edited by {}: [{}] is [No], so mail is sent as {device_email}.",
                user.describe(),
                field.label()
            ),
            format!(
                "Leave From empty to send as {device_email}, or ask the administrator to set [{}] ({FROM_ADDRESS_PAGE}) to [Yes]. (Allowing edits risks SendAsDenied from Exchange Online.)",
                field.label(),
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "mfp@contoso.com";
    const EDIT: Option<&str> = Some("ceo@contoso.com");
    const USERS: [WalkUpUser; 4] = [
        WalkUpUser::Unauthenticated,
        WalkUpUser::Guest,
        WalkUpUser::AuthenticatedLdapSucceeded,
        WalkUpUser::AuthenticatedLdapFailed,
    ];

    fn closed() -> FromAddressPolicy {
        FromAddressPolicy {
            auth_edit_on_ldap_success: false,
            auth_edit_on_ldap_failure: false,
            guest_edit: false,
            auth_send_despite_ldap_failure: true,
            edit_without_auth: false,
            alias_sender: false,
        }
    }

    fn code(
        policy: &FromAddressPolicy,
        user: WalkUpUser,
        from: Option<&str>,
    ) -> Option<&'static str> {
        check(policy, user, from, DEVICE).err().map(|d| d.code)
    }

    #[test]
    fn each_edit_field_opens_edits_for_its_own_user_only() {
        type Open = fn(&mut FromAddressPolicy);
        let fields: [(SettingKey, Open); 4] = [
            (SettingKey::FromEditWithoutAuth, |p| {
                p.edit_without_auth = true
            }),
            (SettingKey::FromGuestEdit, |p| p.guest_edit = true),
            (SettingKey::FromAuthEditOnLdapSuccess, |p| {
                p.auth_edit_on_ldap_success = true
            }),
            (SettingKey::FromAuthEditOnLdapFailure, |p| {
                p.auth_edit_on_ldap_failure = true
            }),
        ];
        for (field, open) in fields {
            let mut policy = closed();
            open(&mut policy);
            for user in USERS {
                let allowed = user.edit_field() == field;
                assert_eq!(
                    code(&policy, user, EDIT),
                    (!allowed).then_some("from-edit-not-allowed"),
                    "{field:?} for {user:?}"
                );
            }
        }
    }

    #[test]
    fn a_refused_edit_names_the_deciding_field_and_the_way_out() {
        for user in USERS {
            let d = check(&closed(), user, EDIT, DEVICE).unwrap_err();
            let field = user.edit_field();
            assert!(d.message.contains(field.label()), "{user:?}: {}", d.message);
            // The web panel names the field by its label, the command line by its key.
            assert!(
                d.remedy.web_panel().contains(field.label()),
                "{user:?}: {}",
                d.remedy
            );
            assert!(
                d.remedy
                    .command_line()
                    .contains(&format!("`{}`", field.as_str())),
                "{user:?}: {}",
                d.remedy.command_line()
            );
            assert!(d.remedy.contains(&format!("send as {DEVICE}")));
        }
    }

    #[test]
    fn sending_as_the_device_email_address_is_no_edit() {
        for user in USERS {
            assert_eq!(code(&closed(), user, None), None);
            assert_eq!(code(&closed(), user, Some("MFP@Contoso.com")), None);
        }
    }

    #[test]
    fn after_a_failed_ldap_search_only_send_despite_failure_lets_the_user_send() {
        let mut policy = closed();
        policy.auth_send_despite_ldap_failure = false;
        // Refused even without an edit, and even when edits would be allowed.
        policy.auth_edit_on_ldap_failure = true;
        for from in [None, EDIT] {
            let d = check(&policy, WalkUpUser::AuthenticatedLdapFailed, from, DEVICE).unwrap_err();
            assert_eq!(d.code, "send-refused-ldap-search-failed");
            assert!(
                d.message
                    .contains(SettingKey::FromAuthSendDespiteLdapFailure.label())
            );
            assert!(
                d.remedy
                    .command_line()
                    .contains("from.auth-send-despite-ldap-failure")
            );
        }
        // The other users are not concerned by that field.
        for user in [
            WalkUpUser::Unauthenticated,
            WalkUpUser::Guest,
            WalkUpUser::AuthenticatedLdapSucceeded,
        ] {
            assert_eq!(code(&policy, user, None), None, "{user:?}");
        }
        policy.auth_send_despite_ldap_failure = true;
        assert_eq!(
            code(&policy, WalkUpUser::AuthenticatedLdapFailed, EDIT),
            None
        );
    }
}
