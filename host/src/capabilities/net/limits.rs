//! At most N SMTP connections open at once to one destination. Exchange Online allows 3
//! per mailbox and answers `432 4.3.2 Concurrent connections limit exceeded` beyond that;
//! waiting here for a slot is kinder than failing a scan-to-email job at the server.
//!
//! A [`Permit`] holds a slot and gives it back when dropped, with the connection.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::NetError;

#[derive(Debug)]
pub(super) struct ConnectionLimiter {
    max: usize,
    slots: Arc<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    open: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

impl Slots {
    /// The counts stay consistent even if a holder panicked, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One open connection's slot, released on drop.
#[derive(Debug)]
pub(super) struct Permit {
    slots: Arc<Slots>,
    key: String,
}

impl ConnectionLimiter {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            slots: Arc::default(),
        }
    }

    /// Takes a slot for `key`, waiting up to `wait` for one to be released.
    pub(super) fn acquire(&self, key: &str, wait: Duration) -> Result<Permit, NetError> {
        // A wait too long to represent is as good as forever.
        let deadline = Instant::now().checked_add(wait);
        let mut open = self.slots.lock();
        loop {
            let count = open.entry(key.to_owned()).or_insert(0);
            if *count < self.max {
                *count += 1;
                return Ok(Permit {
                    slots: self.slots.clone(),
                    key: key.to_owned(),
                });
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(NetError::Other(format!(
                    "{key} already has {} concurrent connections from this device, the most allowed; none closed within {} s",
                    self.max,
                    wait.as_secs_f32()
                )));
            }
            open = match self.slots.freed.wait_timeout(open, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
        drop(open);
        self.slots.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn fourth_slot_times_out_while_three_are_held() {
        let limiter = ConnectionLimiter::new(3);
        let held: Vec<_> = (0..3)
            .map(|_| {
                limiter
                    .acquire("smtp.office365.com:587", Duration::ZERO)
                    .unwrap()
            })
            .collect();
        let started = Instant::now();
        let err = limiter
            .acquire("smtp.office365.com:587", Duration::from_millis(100))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(
            err.to_string().contains("3 concurrent connections"),
            "{err}"
        );
        // Another destination has its own slots.
        limiter
            .acquire("smtp.example.com:25", Duration::ZERO)
            .unwrap();
        drop(held);
    }

    #[test]
    fn waiting_slot_is_granted_when_one_is_dropped() {
        let limiter = Arc::new(ConnectionLimiter::new(1));
        let first = limiter.acquire("a:25", Duration::ZERO).unwrap();
        let waiter = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.acquire("a:25", Duration::from_secs(10)).map(drop))
        };
        thread::sleep(Duration::from_millis(50));
        drop(first);
        waiter.join().unwrap().unwrap();
        assert!(limiter.slots.lock().is_empty(), "every slot was returned");
    }
}
