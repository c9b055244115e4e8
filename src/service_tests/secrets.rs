//! Secrets (DESIGN.md, "Conventions"): no token reaches a diagnosis, a report or Debug output.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mfp_fakes::{Aadsts, Case, SmtpCase};

use super::rig::{Rig, WORK_UPN, message};

#[test]
fn no_token_appears_in_any_diagnosis_report_or_debug_output() {
    // Every rig call above checks its result against every token the identity fake
    // issued; this test makes the failures that hold the token closest.
    for case in [
        SmtpCase::ErrorChallenge,
        SmtpCase::AuthDisabledForTenant,
        SmtpCase::ConcurrentLimit,
    ] {
        let rig = Rig::for_case(Case::Smtp(case));
        let signed_in = rig.sign_in();
        let grant = rig.grant().unwrap();
        let f = rig.send_err(&message(), signed_in + 10);
        let access = grant.access_token.expose();
        for text in [
            format!("{f:?}"),
            format!("{f:#?}"),
            f.diagnosis.message.clone(),
            f.diagnosis.remedy.web_panel().to_owned(),
            f.diagnosis.remedy.command_line().to_owned(),
        ] {
            assert!(
                !text.contains(access) && !text.contains(&access[access.len() - 64..]),
                "{case:?}"
            );
        }
        // The stored grant and the account never show a token in Debug.
        let shown = format!(
            "{grant:?} {:?} {:?}",
            rig.account(),
            rig.status(signed_in + 20)
        );
        assert!(
            !shown.contains(&access[..64]) && !shown.contains(grant.refresh_token.expose()),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
        assert!(
            rig.transcript(0).contains(
                &STANDARD.encode(format!("user={WORK_UPN}\x01auth=Bearer {access}\x01\x01"))
            ),
            "the token did go to the server"
        );
    }
    // A refresh refused for good, and a successful send's report.
    let rig = Rig::for_case(Case::Refused(Aadsts::GrantRevoked50173));
    let signed_in = rig.sign_in();
    let grant = rig.grant().unwrap();
    let f = rig.send_err(&message(), grant.expires_at);
    assert!(!format!("{f:?}").contains(grant.refresh_token.expose()));
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let report = rig.send(&message(), signed_in + 10).unwrap();
    let access = rig.grant().unwrap().access_token.expose().to_owned();
    assert!(!format!("{report:?}").contains(&access[..64]));
    assert!(!rig.secrets.borrow().is_empty());
}
