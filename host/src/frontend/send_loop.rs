//! The one send loop of both front ends: send, and when the component answers
//! `retry-later`, wait what it says and send again with the attempt it names. The loop
//! decides nothing itself: how many attempts, how long to wait and which failures are
//! worth another try are the component's answer (`wit/mailer.wit`).

use std::time::Duration;

use crate::bindings::mailer::{OutgoingMessage, Retry, SendError, SendReport};
use crate::capabilities::attachments::AttachmentSet;
use crate::device::{Device, DeviceError, unix_now};
use crate::frontend::Failure;

/// A message the server accepted, and how many attempts it took.
#[derive(Debug)]
pub struct Sent {
    pub report: SendReport,
    pub attempts: u32,
}

/// Why the loop stopped without a sent message.
#[derive(Debug)]
pub enum NotSent {
    /// The attachments of an attempt could not be opened.
    Attachments(Failure),
    /// The device's last answer.
    Device(DeviceError),
}

impl From<NotSent> for Failure {
    fn from(err: NotSent) -> Self {
        match err {
            NotSent::Attachments(failure) => failure,
            NotSent::Device(err) => err.into(),
        }
    }
}

/// The time a send loop reads and waits in: the system's, or a test's.
pub trait Clock {
    /// Seconds since the Unix epoch.
    fn now(&mut self) -> u64;
    /// Waits `duration`.
    fn sleep(&mut self, duration: Duration);
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&mut self) -> u64 {
        unix_now()
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Sends `message`, retrying as the component asks. `attachments` opens the files for
/// each attempt (they are read again from the start); `on_retry` is told of each wait
/// before it begins, so a front end can say "retrying in 30 s (attempt 2 of 3)".
pub fn send(
    device: &Device,
    message: OutgoingMessage,
    attachments: impl FnMut(u32) -> Result<AttachmentSet, Failure>,
    on_retry: impl FnMut(&Retry),
) -> Result<Sent, NotSent> {
    send_on(&mut SystemClock, device, message, attachments, on_retry)
}

/// [`send`] on `clock`.
pub fn send_on(
    clock: &mut impl Clock,
    device: &Device,
    mut message: OutgoingMessage,
    mut attachments: impl FnMut(u32) -> Result<AttachmentSet, Failure>,
    mut on_retry: impl FnMut(&Retry),
) -> Result<Sent, NotSent> {
    message.attempt = 1;
    loop {
        let files = attachments(message.attempt).map_err(NotSent::Attachments)?;
        message.attachments = files.ids();
        match device.send(&message, files, clock.now()) {
            Ok(report) => {
                return Ok(Sent {
                    report,
                    attempts: message.attempt,
                });
            }
            // A retry that does not move on would never end: that is a faulty component,
            // and its last answer stands.
            Err(DeviceError::SendFailed(SendError::RetryLater(retry)))
                if retry.next_attempt > message.attempt =>
            {
                on_retry(&retry);
                clock.sleep(Duration::from_secs(u64::from(retry.after_seconds)));
                message.attempt = retry.next_attempt;
            }
            Err(err) => return Err(NotSent::Device(err)),
        }
    }
}
