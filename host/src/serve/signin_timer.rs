//! The host-owned sign-in timer. The component never sleeps: `signin.poll(now)` answers
//! "call again at T"; this task sleeps until exactly T and polls again, until the sign-in
//! ends. How it ended is the component's to keep: `signin.status` reports a failed
//! sign-in with its diagnosis to every panel and to `mfp-host auth status`. Starting a
//! new sign-in or signing out cancels the running timer.
//!
//! A second timer keeps an idle device signed in ([`keep_alive`]): refresh tokens expire
//! after 90 idle days (AADSTS700082), so `signin.keep-alive` is called when the component
//! says (weekly), and at least hourly to notice a new sign-in.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::AppState;
use super::api::{ApiError, blocking};
use crate::bindings::signin::{AuthState, DeviceCode, PollStatus, SigninError};
use crate::device::{DeviceError, unix_now};

/// How long to wait before polling again when the component names a time already past.
const MIN_WAIT: Duration = Duration::from_millis(250);

/// How long to wait after a poll call that failed (a trap, the storage): the host keeps
/// the timer going until the code expires, and the component decides the rest.
const FAILED_CALL_WAIT: Duration = Duration::from_secs(5);

/// The longest the keep-alive timer sleeps: it wakes at least this often, so a new
/// sign-in, a suspended machine or a clock change never make it oversleep a refresh.
const KEEP_ALIVE_CHECK: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct TimerState {
    /// Bumped by every start and sign-out, so an old timer stops.
    generation: u64,
    task: Option<JoinHandle<()>>,
}

/// One timer per device.
#[derive(Default)]
pub(crate) struct SigninTimer {
    state: Mutex<TimerState>,
    /// Held around each start, poll and sign-out, so they never overlap.
    calls: tokio::sync::Mutex<()>,
}

impl SigninTimer {
    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cancels the running timer; returns the new generation.
    fn reset(&self) -> u64 {
        let mut state = self.lock();
        if let Some(task) = state.task.take() {
            task.abort();
        }
        state.generation += 1;
        state.generation
    }

    /// Open Authentication Page: a new device code, then polling on this timer.
    pub async fn start(&self, app: &AppState) -> Result<DeviceCode, ApiError> {
        let _calls = self.calls.lock().await;
        let generation = self.reset();
        let code = blocking(&app.device, |device| device.signin_start(unix_now())).await?;
        self.spawn(app, generation, code.expires_at);
        Ok(code)
    }

    /// Cancels the sign-in in progress and its timer; an account signed in before stays.
    pub async fn cancel(&self, app: &AppState) -> Result<(), ApiError> {
        let _calls = self.calls.lock().await;
        self.reset();
        blocking(&app.device, |device| device.cancel_signin()).await
    }

    /// Signs out: cancels the timer, deletes the tokens and the account.
    pub async fn sign_out(&self, app: &AppState) -> Result<(), ApiError> {
        let _calls = self.calls.lock().await;
        self.reset();
        blocking(&app.device, |device| device.sign_out()).await
    }

    /// Starts the polling task of `generation` for a code that expires at `expires_at`.
    fn spawn(&self, app: &AppState, generation: u64, expires_at: u64) {
        let task = tokio::spawn(poll_loop(app.clone(), generation, expires_at));
        let mut state = self.lock();
        if state.generation == generation {
            state.task = Some(task);
        } else {
            task.abort();
        }
    }
}

/// Polls a sign-in left in progress by an earlier run of the server, if there is one.
pub(crate) fn resume(app: AppState) {
    tokio::spawn(async move {
        let status = blocking(&app.device, |device| device.signin_status(unix_now())).await;
        if let Ok(AuthState::InProgress(pending)) = status {
            let _calls = app.signin.calls.lock().await;
            let generation = app.signin.reset();
            app.signin
                .spawn(&app, generation, pending.device_code.expires_at);
        }
    });
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn poll_loop(app: AppState, generation: u64, expires_at: u64) {
    let timer = app.signin.clone();
    loop {
        let result = {
            let _calls = timer.calls.lock().await;
            if timer.lock().generation != generation {
                return;
            }
            let device = app.device.clone();
            tokio::task::spawn_blocking(move || device.signin_poll(unix_now())).await
        };
        let wait = match result {
            Ok(Ok(PollStatus::Pending(at))) => wait_until(at),
            Ok(Ok(PollStatus::PendingUnreachable(trouble))) => {
                // The status shows the diagnosis; polling goes on, it may recover.
                tracing::warn!(target: "mfp_host::serve", code = %trouble.diagnosis.code, "sign-in polls fail");
                wait_until(trouble.next_poll_at)
            }
            Ok(Ok(PollStatus::SignedIn(_))) => {
                tracing::info!(target: "mfp_host::serve", "the device is signed in");
                return;
            }
            Ok(Ok(PollStatus::Failed(diagnosis))) => {
                tracing::warn!(target: "mfp_host::serve", code = %diagnosis.code, "sign-in failed");
                return;
            }
            // Nothing left to poll (signed out or reset meanwhile).
            Ok(Err(DeviceError::SigninFailed(SigninError::SignInRequired(_)))) => return,
            Ok(Err(error)) => {
                tracing::warn!(target: "mfp_host::serve", "a sign-in poll failed: {error}");
                FAILED_CALL_WAIT
            }
            Err(join) => {
                tracing::warn!(target: "mfp_host::serve", "a sign-in poll did not complete: {join}");
                FAILED_CALL_WAIT
            }
        };
        // A poll that answers ends an expired flow itself; one that keeps failing would
        // never end, so it stops with the code.
        if wait == FAILED_CALL_WAIT && unix_now() > expires_at {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// How long from now until `at` (Unix seconds); [`MIN_WAIT`] when it is past.
fn wait_until(at: u64) -> Duration {
    let due = u128::from(at) * 1000;
    let now = now_millis();
    if due > now {
        Duration::from_millis(u64::try_from(due - now).unwrap_or(u64::MAX))
    } else {
        MIN_WAIT
    }
}

/// Keeps the device signed in while the server runs: calls `signin.keep-alive` when it
/// asks (a week after the last refresh), waking at least every [`KEEP_ALIVE_CHECK`].
/// Signed out, it only checks again later; a failed refresh is logged and retried.
pub(crate) fn keep_alive(app: AppState) {
    tokio::spawn(async move {
        loop {
            let device = app.device.clone();
            let result =
                tokio::task::spawn_blocking(move || device.signin_keep_alive(unix_now())).await;
            let wait = match result {
                Ok(Ok(at)) => wait_until(at).min(KEEP_ALIVE_CHECK),
                Ok(Err(DeviceError::SigninFailed(SigninError::SignInRequired(_)))) => {
                    KEEP_ALIVE_CHECK
                }
                Ok(Err(error)) => {
                    tracing::warn!(target: "mfp_host::serve", "keep-alive refresh failed: {error}");
                    KEEP_ALIVE_CHECK
                }
                Err(join) => {
                    tracing::warn!(target: "mfp_host::serve", "keep-alive did not complete: {join}");
                    KEEP_ALIVE_CHECK
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}
