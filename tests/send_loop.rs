//! The front ends' one send loop (`mfp_host::frontend::send_loop`) against Exchange
//! Online's stand-in: it waits exactly what the component says, sends again with the
//! attempt the component names, and stops when the component stops asking.

mod microsoft;

use std::sync::atomic::Ordering;
use std::time::Duration;

use mfp_fakes::{Case, SmtpCase, World};
use mfp_host::bindings::mailer::SendError;
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::device::DeviceError;
use mfp_host::frontend::send_loop::{self, Clock, NotSent};
use microsoft::{Microsoft, message};

/// The stand-ins' clock, moved on by every wait, and the waits it was asked for.
struct FakeClock<'a> {
    ms: &'a Microsoft,
    waits: Vec<Duration>,
}

impl Clock for FakeClock<'_> {
    fn now(&mut self) -> u64 {
        self.ms.now()
    }

    fn sleep(&mut self, duration: Duration) {
        self.waits.push(duration);
        self.ms
            .clock
            .fetch_add(duration.as_secs(), Ordering::SeqCst);
    }
}

#[test]
fn a_busy_server_is_retried_as_the_component_says_then_given_up() {
    let ms = Microsoft::with_world(World::for_case(Case::Smtp(SmtpCase::ConcurrentLimit)));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let mut clock = FakeClock {
        ms: &ms,
        waits: Vec::new(),
    };
    let mut opened = Vec::new();
    let mut told = Vec::new();
    let result = send_loop::send_on(
        &mut clock,
        &device,
        message("alice@contoso.com", vec![]),
        |attempt| {
            opened.push(attempt);
            Ok(AttachmentSet::default())
        },
        |retry| told.push((retry.after_seconds, retry.next_attempt, retry.max_attempts)),
    );
    let Err(NotSent::Device(DeviceError::SendFailed(SendError::Failed(failure)))) = result else {
        panic!("the last refusal stands: {result:?}")
    };
    assert_eq!(failure.diagnosis.code, "smtp-concurrent-connections");
    assert_eq!(
        told,
        [(30, 2, 3), (60, 3, 3)],
        "attempt N of M, from the component"
    );
    assert_eq!(
        clock.waits,
        [Duration::from_secs(30), Duration::from_secs(60)],
        "the waits the component asked for, and nothing else"
    );
    assert_eq!(
        opened,
        [1, 2, 3],
        "each attempt reads its attachments afresh"
    );
    assert!(ms.world.messages().is_empty());
}

#[test]
fn an_accepted_message_reports_its_one_attempt_and_waits_for_nothing() {
    let ms = Microsoft::with_world(World::for_case(Case::Happy));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let mut clock = FakeClock {
        ms: &ms,
        waits: Vec::new(),
    };
    let sent = send_loop::send_on(
        &mut clock,
        &device,
        message("alice@contoso.com", vec![]),
        |_| Ok(AttachmentSet::default()),
        |retry| panic!("no retry was asked for: {retry:?}"),
    )
    .expect("accepted");
    assert_eq!(sent.attempts, 1);
    assert!(clock.waits.is_empty());
    assert_eq!(ms.world.messages().len(), 1);
}
