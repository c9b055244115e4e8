//! Exchange's replies and the From Address policy (S7), end to end through wasmtime: each
//! named stand-in case is answered by the fake Exchange Online at the stage where Exchange
//! answers it, and the component's diagnosis (code, remedy, retry or not) is checked; each
//! S7 case is sent or refused, a refusal before any connection reaches Exchange.
//!
//! Mutation proof (issue #8, item 7): removing the SendAsDenied case from the classifier
//! (`src/diagnose.rs`) turns
//! `send_as_denied_after_data_in_either_wording_is_diagnosed_as_send_as_denied` red.

mod microsoft;
use microsoft::{Microsoft, message, send_failure};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mfp_component_tests::{Origin, owned};
use mfp_fakes::{Case, SmtpCase, World};
use mfp_host::bindings::mailer::{OutgoingMessage, SendError, WalkUpUser};
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::device::Device;

const SCAN_LEN: usize = 20_000;
const FROM_ADDRESS_PAGE: &str = "Properties > Services > Email > General > From Address";

/// One signed-in device against the fakes running `case`.
struct Rig {
    ms: Microsoft,
    device: Device,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(case: Case) -> Self {
        let ms = Microsoft::with_world(World::for_case(case));
        let dir = tempfile::tempdir().unwrap();
        let device = ms.signed_in_device(dir.path());
        Self {
            ms,
            device,
            _dir: dir,
        }
    }

    fn web(&self, changes: &[(&str, &str)]) {
        self.device
            .apply(Origin::WebPanel, &owned(changes))
            .unwrap();
    }

    /// Sends `msg` with a scan attached; the result and how many scan bytes were read.
    fn send(&self, mut msg: OutgoingMessage) -> (Result<(), SendError>, u64) {
        let scan: Vec<u8> = (0..SCAN_LEN).map(|i| (i * 7 % 251) as u8).collect();
        let files = AttachmentSet::from_memory(vec![("scan.pdf".into(), Arc::from(scan))]);
        msg.attachments = files.ids();
        let progress = files.progress();
        let now = self.ms.advance(1);
        let result = match self.device.send(&msg, files, now) {
            Ok(_) => Ok(()),
            Err(e) => Err(send_failure(e)),
        };
        (result, progress.load(Ordering::SeqCst))
    }

    fn smtp_connections(&self) -> u64 {
        self.ms.world.requests("smtp")
    }
}

/// What the test expects of one failed send.
struct Expected<'a> {
    code: &'a str,
    reply: &'a str,
    remedy: &'a [&'a str],
    not_in_remedy: &'a [&'a str],
    /// Whether the scan was sent (the reply came after DATA) or never read.
    after_data: bool,
}

fn check(case: Case, rig: &Rig, failure: &SendError, read: u64, want: &Expected) {
    let d = &failure.diagnosis();
    assert_eq!(d.code, want.code, "{}: {failure:?}", case.name());
    let reply = failure.server_reply().unwrap_or_default();
    assert!(reply.starts_with(want.reply), "{}: {reply}", case.name());
    assert!(
        d.message.contains(want.reply),
        "{}: quotes the server: {}",
        case.name(),
        d.message
    );
    for part in want.remedy {
        assert!(
            d.remedy.web_panel.contains(part),
            "{}: {part:?} in {}",
            case.name(),
            d.remedy.web_panel
        );
    }
    for part in want.not_in_remedy {
        assert!(
            !d.remedy.web_panel.contains(part),
            "{}: no {part:?} in {}",
            case.name(),
            d.remedy.web_panel
        );
    }
    assert_eq!(failure.retry_after(), None, "{}: permanent", case.name());
    assert_eq!(
        read >= SCAN_LEN as u64,
        want.after_data,
        "{}: refused at the right stage ({read} scan bytes read)",
        case.name()
    );
    assert!(rig.ms.world.messages().is_empty(), "{}", case.name());
}

#[test]
fn a_full_mailbox_after_data_is_permanent_and_points_at_sent_items() {
    let case = Case::Smtp(SmtpCase::MailboxFull);
    let rig = Rig::new(case);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    let failure = result.unwrap_err();
    check(
        case,
        &rig,
        &failure,
        read,
        &Expected {
            code: "smtp-mailbox-full",
            reply: "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException",
            remedy: &["retention policy", "Waiting does not help"],
            not_in_remedy: &["30 messages a minute"],
            after_data: true,
        },
    );
    assert!(failure.diagnosis().message.contains("Sent Items"));
}

#[test]
fn each_throttle_at_mail_from_says_what_to_fix_first_then_to_wait() {
    for (smtp, reply, fix) in [
        (
            SmtpCase::ThrottledMailboxFull,
            "550 5.2.251 Sender throttled due to continuous mailbox full errors.",
            "retention policy",
        ),
        (
            SmtpCase::ThrottledSendAsDenied,
            "550 5.2.252 Sender throttled due to continuous send as denied errors.",
            FROM_ADDRESS_PAGE,
        ),
        (
            SmtpCase::ThrottledInvalidLicense,
            "550 5.2.253 Sender throttled due to continuous invalid license errors.",
            "license",
        ),
    ] {
        let case = Case::Smtp(smtp);
        let rig = Rig::new(case);
        let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
        let failure = result.unwrap_err();
        check(
            case,
            &rig,
            &failure,
            read,
            &Expected {
                code: "smtp-sender-throttled",
                reply,
                remedy: &["First ", fix, "wait"],
                not_in_remedy: &["Set the Device Email Address"],
                after_data: false,
            },
        );
    }
}

#[test]
fn an_outlook_com_account_blocked_for_spam_is_told_to_unblock_it() {
    let case = Case::Smtp(SmtpCase::OutboundSpam);
    let rig = Rig::new(case);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    let failure = result.unwrap_err();
    check(
        case,
        &rig,
        &failure,
        read,
        &Expected {
            code: "smtp-account-blocked-for-spam",
            reply: "554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException",
            remedy: &["unblock", "mfp.scanner@outlook.com"],
            not_in_remedy: &["Device Email Address", FROM_ADDRESS_PAGE],
            after_data: true,
        },
    );
}

#[test]
fn conditional_access_at_auth_is_not_the_tenant_switch_and_tenant_text_is() {
    let case = Case::Smtp(SmtpCase::ConditionalAccess);
    let rig = Rig::new(case);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    let failure = result.unwrap_err();
    check(
        case,
        &rig,
        &failure,
        read,
        &Expected {
            code: "smtp-auth-blocked-by-conditional-access",
            reply: "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria",
            remedy: &["Conditional Access", "Sign-in logs"],
            not_in_remedy: &["Set-TransportConfig", "SmtpClientAuthenticationDisabled"],
            after_data: false,
        },
    );
    // The tenant switch is the advice only when Exchange's text says Tenant.
    let case = Case::Smtp(SmtpCase::AuthDisabledForTenant);
    let rig = Rig::new(case);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    check(
        case,
        &rig,
        &result.unwrap_err(),
        read,
        &Expected {
            code: "smtp-auth-disabled-for-tenant",
            reply: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant",
            remedy: &["Set-TransportConfig"],
            not_in_remedy: &["Conditional Access"],
            after_data: false,
        },
    );
}

#[test]
fn a_personal_account_refused_at_auth_gets_advice_for_personal_accounts() {
    let case = Case::PersonalAccountAuthRefused;
    let rig = Rig::new(case);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    let failure = result.unwrap_err();
    check(
        case,
        &rig,
        &failure,
        read,
        &Expected {
            code: "smtp-auth-personal-account",
            reply: "535 5.7.3 Authentication unsuccessful",
            remedy: &["account.microsoft.com"],
            not_in_remedy: &["UPN"],
            after_data: false,
        },
    );

    // A Device Email Address other than the account's own: Outlook.com refuses the
    // sign-in, and the advice is the account's own address, never "the UPN".
    let case = Case::PersonalAccount;
    let rig = Rig::new(case);
    rig.web(&[("device-email", "scans.alias@outlook.com")]);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    check(
        case,
        &rig,
        &result.unwrap_err(),
        read,
        &Expected {
            code: "smtp-auth-personal-account",
            reply: "535 5.7.3 Authentication unsuccessful",
            remedy: &["set the Device Email Address to mfp.scanner@outlook.com"],
            not_in_remedy: &["UPN"],
            after_data: false,
        },
    );
}

#[test]
fn send_as_denied_after_data_in_either_wording_is_diagnosed_as_send_as_denied() {
    for (case, reply) in [
        (
            Case::Smtp(SmtpCase::SendAsDeniedAfterData),
            "554 5.2.252 SendAsDenied; mfp@contoso.com not allowed to send as ceo@contoso.com",
        ),
        (
            Case::LegacySendAsReply,
            "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
        ),
    ] {
        let rig = Rig::new(case);
        rig.web(&[("from.edit-without-auth", "yes")]);
        let mut msg = message("alice@fabrikam.com", vec![]);
        msg.from = Some("ceo@contoso.com".into());
        let (result, read) = rig.send(msg);
        check(
            case,
            &rig,
            &result.unwrap_err(),
            read,
            &Expected {
                code: "smtp-send-as-denied",
                reply,
                remedy: &[
                    FROM_ADDRESS_PAGE,
                    "[Edit [From:] Field when Authorization is not Required] to [No]",
                    "[Sender is an alias or proxy address of the signed-in account] to [Yes]",
                ],
                not_in_remedy: &["wait"],
                after_data: true,
            },
        );
    }
}

/// One S7 case: policy changes, who is at the panel, the From they send as, and the
/// refusal expected (`None`: delivered).
struct S7 {
    policy: &'static [(&'static str, &'static str)],
    user: WalkUpUser,
    from: Option<&'static str>,
    refused: Option<(&'static str, &'static str)>,
}

const ALIAS: &str = "scans@contoso.com";

#[test]
fn each_from_policy_field_decides_for_its_own_user_and_refusals_never_connect() {
    use WalkUpUser::*;
    let edit = Some(ALIAS);
    let cases = [
        // Authorization not required: "edit when not required".
        S7 {
            policy: &[],
            user: Unauthenticated,
            from: None,
            refused: None,
        },
        S7 {
            policy: &[],
            user: Unauthenticated,
            from: edit,
            refused: Some(("from-edit-not-allowed", "from.edit-without-auth")),
        },
        S7 {
            policy: &[("from.edit-without-auth", "yes")],
            user: Unauthenticated,
            from: edit,
            refused: None,
        },
        // Guests: "guests may edit", and no other field.
        S7 {
            policy: &[("from.edit-without-auth", "yes")],
            user: Guest,
            from: edit,
            refused: Some(("from-edit-not-allowed", "from.guest-edit")),
        },
        S7 {
            policy: &[("from.guest-edit", "yes")],
            user: Guest,
            from: edit,
            refused: None,
        },
        S7 {
            policy: &[],
            user: Guest,
            from: None,
            refused: None,
        },
        // Authenticated after a successful LDAP search: the first checkbox.
        S7 {
            policy: &[
                ("from.guest-edit", "yes"),
                ("from.edit-without-auth", "yes"),
            ],
            user: AuthenticatedLdapSucceeded,
            from: edit,
            refused: Some(("from-edit-not-allowed", "from.auth-edit-on-ldap-success")),
        },
        S7 {
            policy: &[("from.auth-edit-on-ldap-success", "yes")],
            user: AuthenticatedLdapSucceeded,
            from: edit,
            refused: None,
        },
        // Authenticated after a failed search: the second checkbox (ticked by default)…
        S7 {
            policy: &[],
            user: AuthenticatedLdapFailed,
            from: edit,
            refused: None,
        },
        S7 {
            policy: &[
                ("from.auth-edit-on-ldap-failure", "no"),
                ("from.auth-edit-on-ldap-success", "yes"),
            ],
            user: AuthenticatedLdapFailed,
            from: edit,
            refused: Some(("from-edit-not-allowed", "from.auth-edit-on-ldap-failure")),
        },
        // …and "send despite LDAP failure", which refuses the send itself, edit or not.
        S7 {
            policy: &[("from.auth-send-despite-ldap-failure", "no")],
            user: AuthenticatedLdapFailed,
            from: None,
            refused: Some((
                "send-refused-ldap-search-failed",
                "from.auth-send-despite-ldap-failure",
            )),
        },
        S7 {
            policy: &[("from.auth-send-despite-ldap-failure", "no")],
            user: AuthenticatedLdapSucceeded,
            from: None,
            refused: None,
        },
    ];
    let rig = Rig::new(Case::Happy);
    let defaults = [
        ("from.auth-edit-on-ldap-success", "no"),
        ("from.auth-edit-on-ldap-failure", "yes"),
        ("from.guest-edit", "no"),
        ("from.auth-send-despite-ldap-failure", "yes"),
        ("from.edit-without-auth", "no"),
    ];
    for (i, case) in cases.iter().enumerate() {
        rig.web(&defaults);
        if !case.policy.is_empty() {
            rig.web(case.policy);
        }
        rig.ms.world.clear_messages();
        let connections = rig.smtp_connections();
        let tokens = rig.ms.world.requests("token");
        let mut msg = message("alice@fabrikam.com", vec![]);
        msg.from = case.from.map(str::to_owned);
        msg.user = case.user;
        let (result, read) = rig.send(msg);
        match (case.refused, result) {
            (None, Ok(())) => {
                let sent = rig.ms.world.messages();
                assert_eq!(sent.len(), 1, "case {i}");
                let from = case.from.unwrap_or("mfp@contoso.com");
                assert_eq!(sent[0].header("From").as_deref(), Some(from), "case {i}");
                assert_eq!(rig.smtp_connections(), connections + 1, "case {i}");
            }
            (Some((code, field)), Err(failure)) => {
                let d = &failure.diagnosis();
                assert_eq!(d.code, code, "case {i}: {d:?}");
                // The command line names the setting by its key.
                assert!(
                    d.remedy.command_line.contains(field),
                    "case {i}: names {field}: {}",
                    d.remedy.command_line
                );
                assert_eq!(failure.server_reply(), None, "case {i}");
                assert_eq!(failure.retry_after(), None, "case {i}");
                assert_eq!(
                    rig.smtp_connections(),
                    connections,
                    "case {i}: no connection"
                );
                assert_eq!(
                    rig.ms.world.requests("token"),
                    tokens,
                    "case {i}: no token fetched"
                );
                assert_eq!(read, 0, "case {i}: the scan is not read");
                assert!(rig.ms.world.messages().is_empty(), "case {i}");
            }
            (want, got) => panic!("case {i}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_421_is_a_temporary_server_condition_not_the_concurrency_limit() {
    let case = Case::Smtp(SmtpCase::ServiceUnavailableAfterMail);
    let rig = Rig::new(case);
    let (result, read) = rig.send(message("alice@fabrikam.com", vec![]));
    let failure = result.unwrap_err();
    let d = &failure.diagnosis();
    assert_eq!(d.code, "smtp-service-unavailable", "{failure:?}");
    assert!(
        d.message.contains("421 4.3.2 Service not available"),
        "{}",
        d.message
    );
    for text in [&d.message, &d.remedy.web_panel, &d.remedy.command_line] {
        assert!(!text.contains("concurrent"), "{text}");
    }
    assert_eq!(failure.retry_after(), Some(30), "temporary: retried");
    assert_eq!(read, 0);
    // 432 is the concurrency limit.
    let case = Case::Smtp(SmtpCase::ConcurrentLimit);
    let rig = Rig::new(case);
    let (result, _) = rig.send(message("alice@fabrikam.com", vec![]));
    let failure = result.unwrap_err();
    assert_eq!(failure.diagnosis().code, "smtp-concurrent-connections");
    assert!(failure.diagnosis().message.contains("limit 3"));
    assert_eq!(failure.retry_after(), Some(30));
}
