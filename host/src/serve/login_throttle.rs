//! Login limits without lock-out: a growing delay per client and a global cap on
//! concurrent Argon2 checks.
//!
//! A fixed lock ("5 failures, then 60 s") lets anyone on the administrator's network (or
//! behind the same NAT) keep the real administrator out by failing on purpose. Here a
//! client may fail [`FREE_FAILURES`] times without delay (typos); after that each attempt
//! must wait a delay after the previous one, doubling from [`FIRST_DELAY`] up to
//! [`MAX_DELAY`] and never more, and refused (429) attempts do not lengthen it. Guessing
//! is slowed to one password per [`MAX_DELAY`] per client, while the administrator at
//! the same address waits at most [`MAX_DELAY`] and then logs in; a success clears the
//! client's record.
//!
//! A client is an IPv4 address, or an IPv6 /64 (one host usually owns a whole /64, so
//! counting single IPv6 addresses would give it 2^64 fresh clients).
//!
//! Argon2 costs about 19 MiB and tens of milliseconds of CPU per check: at most
//! [`ARGON2_SLOTS`] run at once, and a login that finds no free slot within [`SLOT_WAIT`]
//! is answered 503 `login-busy`, so a flood of logins cannot exhaust memory or starve the
//! panel's other requests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failed logins per client that cost no delay.
pub(crate) const FREE_FAILURES: u32 = 3;
/// The wait after the first failure beyond [`FREE_FAILURES`]; it doubles with each more.
pub(crate) const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait ever asked of a client.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);
/// A client's failures are forgotten this long after its last attempt.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients remembered at most; past it the least recent is forgotten.
const MAX_CLIENTS: usize = 4096;
/// Argon2 checks running at once, server-wide.
pub(crate) const ARGON2_SLOTS: usize = 2;
/// How long a login waits for a free Argon2 slot before it is answered 503.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// Who a login attempt counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

struct Record {
    /// Attempts that did not succeed (an attempt counts from its start until it succeeds).
    failures: u32,
    last: Instant,
}

/// The wait required after `failures` failed attempts.
pub(crate) fn delay_after(failures: u32) -> Duration {
    let Some(counted) = failures.checked_sub(FREE_FAILURES) else {
        return Duration::ZERO;
    };
    FIRST_DELAY
        .checked_mul(1u32 << counted.min(16))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

/// Failed-login records and the Argon2 slots.
pub(crate) struct LoginThrottle {
    clients: Mutex<HashMap<Client, Record>>,
    argon2: Arc<Semaphore>,
    slot_wait: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            clients: Mutex::default(),
            argon2: Arc::new(Semaphore::new(ARGON2_SLOTS)),
            slot_wait: SLOT_WAIT,
        }
    }
}

impl LoginThrottle {
    fn clients(&self) -> MutexGuard<'_, HashMap<Client, Record>> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts one login attempt from `ip`, or says how long it must wait first. The
    /// attempt counts as a failure until [`Self::succeeded`], so parallel guesses share
    /// the delay.
    pub(crate) fn take_attempt(&self, ip: IpAddr) -> Result<(), Duration> {
        self.take_attempt_at(Client::from(ip), Instant::now())
    }

    fn take_attempt_at(&self, client: Client, now: Instant) -> Result<(), Duration> {
        let mut clients = self.clients();
        clients.retain(|_, r| now.saturating_duration_since(r.last) < FORGET_AFTER);
        if !clients.contains_key(&client)
            && clients.len() >= MAX_CLIENTS
            && let Some(oldest) = clients.iter().min_by_key(|(_, r)| r.last).map(|(c, _)| *c)
        {
            clients.remove(&oldest);
        }
        let record = clients.entry(client).or_insert(Record {
            failures: 0,
            last: now,
        });
        let ready_at = record.last + delay_after(record.failures);
        if now < ready_at {
            return Err(ready_at - now);
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        Ok(())
    }

    /// The attempt from `ip` was not checked (no Argon2 slot): it does not count.
    pub(crate) fn not_checked(&self, ip: IpAddr) {
        if let Some(record) = self.clients().get_mut(&Client::from(ip)) {
            record.failures = record.failures.saturating_sub(1);
        }
    }

    /// The client logged in: its record is cleared.
    pub(crate) fn succeeded(&self, ip: IpAddr) {
        self.clients().remove(&Client::from(ip));
    }

    /// One of the [`ARGON2_SLOTS`], or `None` when none came free within [`SLOT_WAIT`].
    pub(crate) async fn argon2_slot(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(self.slot_wait, self.argon2.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// Whole seconds to announce in `Retry-After` for a wait (rounded up, at least 1).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_and_stays_bounded() {
        assert_eq!(delay_after(0), Duration::ZERO);
        assert_eq!(delay_after(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(delay_after(FREE_FAILURES), FIRST_DELAY);
        assert_eq!(delay_after(FREE_FAILURES + 1), FIRST_DELAY * 2);
        for n in 0..10_000 {
            assert!(delay_after(n) <= MAX_DELAY, "{n}");
            assert!(delay_after(n) <= delay_after(n + 1), "{n}");
        }
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn a_client_waits_at_most_the_longest_delay_however_hard_someone_hammers() {
        let throttle = LoginThrottle::default();
        let admin = Client::from("192.0.2.10".parse::<IpAddr>().unwrap());
        let mut now = Instant::now();
        // An attacker at the administrator's address fails 50 times, each as soon as allowed,
        // and hammers in between: refused attempts do not lengthen the wait.
        for _ in 0..50 {
            while let Err(wait) = throttle.take_attempt_at(admin, now) {
                assert!(wait <= MAX_DELAY, "{wait:?}");
                assert!(throttle.take_attempt_at(admin, now).is_err());
                now += wait;
            }
        }
        let wait = throttle.take_attempt_at(admin, now).unwrap_err();
        assert!(wait <= MAX_DELAY);
        // The administrator waits it out, then gets an attempt; success clears the record.
        now += wait;
        assert!(throttle.take_attempt_at(admin, now).is_ok());
        throttle.succeeded("192.0.2.10".parse().unwrap());
        assert!(throttle.take_attempt_at(admin, now).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_ipv4_per_address() {
        let v6 = |s: &str| Client::from(s.parse::<IpAddr>().unwrap());
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_ne!(v6("192.0.2.1"), v6("192.0.2.2"));
        assert_eq!(v6("::ffff:192.0.2.1"), v6("192.0.2.1"));

        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert!(throttle.take_attempt_at(v6("2001:db8:1:2::1"), now).is_ok());
        }
        assert!(
            throttle
                .take_attempt_at(v6("2001:db8:1:2::abcd"), now)
                .is_err()
        );
        assert!(throttle.take_attempt_at(v6("2001:db8:1:3::1"), now).is_ok());
        assert!(throttle.take_attempt_at(v6("192.0.2.1"), now).is_ok());
    }

    #[test]
    fn an_unchecked_attempt_does_not_count() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            throttle.take_attempt(ip).unwrap();
            throttle.not_checked(ip);
        }
        assert!(throttle.take_attempt(ip).is_ok());
    }

    #[test]
    fn at_most_two_argon2_checks_run_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let throttle = LoginThrottle {
                slot_wait: Duration::from_millis(20),
                ..LoginThrottle::default()
            };
            let first = throttle.argon2_slot().await;
            let second = throttle.argon2_slot().await;
            assert!(first.is_some() && second.is_some());
            // Both slots are held: a third login gets none.
            assert!(throttle.argon2_slot().await.is_none());
            drop(first);
            assert!(throttle.argon2_slot().await.is_some());
        });
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
    }
}
