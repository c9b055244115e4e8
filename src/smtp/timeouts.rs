//! How long the client waits at each stage of a session (RFC 5321 §4.5.3.2). Giving up
//! early is worse than waiting: a client that stops waiting for the reply to the final
//! dot invites a duplicate, because the server may deliver the message anyway.
//!
//! Tests shorten every stage by one divisor (the host's `smtp-timeout-divisor`), which
//! keeps their proportions; the RFC values themselves never change.

use std::time::Duration;

/// The initial `220` greeting: 5 minutes.
pub const GREETING: Duration = Duration::from_secs(5 * 60);
/// The reply to `MAIL FROM`: 5 minutes.
pub const MAIL: Duration = Duration::from_secs(5 * 60);
/// The reply to each `RCPT TO`: 5 minutes.
pub const RCPT: Duration = Duration::from_secs(5 * 60);
/// The `354` reply to `DATA`: 2 minutes.
pub const DATA_INITIATION: Duration = Duration::from_secs(2 * 60);
/// Each write of the message (a data block): 3 minutes.
pub const DATA_BLOCK: Duration = Duration::from_secs(3 * 60);
/// The reply to the final dot: 10 minutes.
pub const FINAL_DOT: Duration = Duration::from_secs(10 * 60);
/// Every other reply (EHLO, STARTTLS and its handshake, AUTH): 5 minutes.
pub const OTHER: Duration = Duration::from_secs(5 * 60);
/// The `221` to `QUIT`: waited for briefly, since the outcome is already known.
pub const QUIT: Duration = Duration::from_secs(5);

/// The stage timeouts of one session: the RFC values divided by `divisor` (1 = as the
/// RFC says; tests use more). Never less than 1 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    divisor: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::RFC_5321
    }
}

impl Timeouts {
    /// The RFC 5321 values, undivided.
    pub const RFC_5321: Timeouts = Timeouts { divisor: 1 };

    /// Every stage shortened by `divisor` (0 is taken as 1).
    pub fn divided_by(divisor: u32) -> Self {
        Self {
            divisor: divisor.max(1),
        }
    }

    /// The divisor applied.
    pub fn divisor(&self) -> u32 {
        self.divisor
    }

    /// `stage` (one of this module's constants) as this session waits for it.
    pub fn of(&self, stage: Duration) -> Duration {
        (stage / self.divisor).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_values_are_kept_undivided() {
        let rfc = Timeouts::default();
        assert_eq!(rfc.of(FINAL_DOT), Duration::from_secs(600));
        assert_eq!(rfc.of(DATA_INITIATION), Duration::from_secs(120));
        assert_eq!(rfc.of(DATA_BLOCK), Duration::from_secs(180));
        assert_eq!(rfc.of(GREETING), Duration::from_secs(300));
    }

    #[test]
    fn a_divisor_shortens_every_stage_alike() {
        let fast = Timeouts::divided_by(150);
        assert_eq!(fast.of(FINAL_DOT), Duration::from_secs(4));
        assert_eq!(fast.of(MAIL), Duration::from_secs(2));
        assert_eq!(Timeouts::divided_by(0), Timeouts::RFC_5321);
        assert_eq!(
            Timeouts::divided_by(u32::MAX).of(QUIT),
            Duration::from_millis(1)
        );
    }
}
