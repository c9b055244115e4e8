//! The approval page's sentence for how a sign-in ends. Both approval pages say it — the
//! demo's `/demo/devicelogin` (`mfp-host serve --demo`) and the browser preview's simulated
//! sign-in page (through the wasm-bindgen `Fakes::approve`) — so it is written once, here,
//! next to the [`SignInOutcome`] it puts into words, and the two pages cannot tell a
//! scenario's end differently.

use super::{Aadsts, Case, SignInOutcome};

/// The approval page's sentence for how the sign-in ends: "Signed in as …" only when the
/// device will be signed in; otherwise what blocks it, in the scenario's words, and that
/// the printer's panel shows the diagnosis. `account`: who approved; `None` when the user
/// declined.
pub fn approval_words(outcome: SignInOutcome, case: Case, account: Option<&str>) -> String {
    let headline = match outcome {
        SignInOutcome::SignedIn => {
            return match account {
                Some(upn) => format!(
                    "Signed in as {upn}. You can close this page; the printer finishes the sign-in on its own."
                ),
                None => "The printer signs in on its own in this scenario.".to_owned(),
            };
        }
        SignInOutcome::Declined if account.is_none() => {
            "You declined the sign-in request.".to_owned()
        }
        SignInOutcome::Declined => "Declined: the sign-in request is declined.".to_owned(),
        SignInOutcome::Expired => {
            "Expired: the code expires before the sign-in completes.".to_owned()
        }
        SignInOutcome::Refused(
            a @ (Aadsts::ConditionalAccess53003 | Aadsts::DeviceCodeFlowBlocked530033),
        ) => format!(
            "Blocked by Conditional Access (AADSTS{}): Microsoft does not issue the tokens.",
            a.code()
        ),
        SignInOutcome::Refused(a) => format!(
            "Refused by Microsoft (AADSTS{}): it does not issue the tokens.",
            a.code()
        ),
        SignInOutcome::IdTokenRejected(_) => {
            "Refused by the printer: the id_token Microsoft issues fails its checks.".to_owned()
        }
        SignInOutcome::ClockRejected => "Refused by the printer: Microsoft's clock is so far from the printer's that the tokens look invalid.".to_owned(),
        SignInOutcome::VerificationUriRejected => {
            "Refused by the printer: it does not show the page Microsoft named.".to_owned()
        }
    };
    format!(
        "{headline} Demo scenario {}: {} Nobody is signed in; the printer's panel shows why and what to do.",
        case.name(),
        case.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::World;

    /// Every case, approved and declined: the page says "Signed in as" the approver exactly
    /// when the device signs in, and otherwise names the scenario and says nobody is.
    #[test]
    fn only_a_sign_in_that_succeeds_reads_signed_in() {
        for case in Case::all() {
            let scenario = World::for_case(case).scenario();
            let answers = [
                (scenario.sign_in_outcome(), Some("ada@contoso.com")),
                (scenario.sign_in_outcome_when_declined(), None),
            ];
            for (outcome, account) in answers {
                let words = approval_words(outcome, case, account);
                if outcome.signs_in() {
                    assert!(
                        words.starts_with("Signed in as ada@contoso.com."),
                        "{}: {words}",
                        case.name()
                    );
                } else {
                    assert!(!words.contains("Signed in as"), "{}: {words}", case.name());
                    assert!(words.contains(&case.name()), "{}: {words}", case.name());
                    assert!(
                        words.contains("Nobody is signed in"),
                        "{}: {words}",
                        case.name()
                    );
                }
            }
        }
    }

    #[test]
    fn a_decline_by_the_user_says_so_and_a_blocked_sign_in_names_its_refusal() {
        let case = Case::Declined;
        assert!(
            approval_words(SignInOutcome::Declined, case, None)
                .starts_with("You declined the sign-in request.")
        );
        assert!(
            approval_words(SignInOutcome::Declined, case, Some("ada@contoso.com"))
                .starts_with("Declined: ")
        );
        let blocked = Case::Refused(Aadsts::DeviceCodeFlowBlocked530033);
        assert!(
            approval_words(
                SignInOutcome::Refused(Aadsts::DeviceCodeFlowBlocked530033),
                blocked,
                Some("ada@contoso.com")
            )
            .starts_with("Blocked by Conditional Access (AADSTS530033)")
        );
    }
}
