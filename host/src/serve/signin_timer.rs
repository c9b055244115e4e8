//! The host-owned sign-in timer. The component never sleeps: `signin.poll(now)` answers
//! "call again at T"; this task sleeps until exactly T, polls again, and keeps the final
//! outcome (signed in, or the failure's diagnosis) for `GET /api/v1/signin`. Starting a
//! new sign-in or signing out cancels the running timer.
//!
//! A second timer keeps an idle device signed in ([`keep_alive`]): refresh tokens expire
//! after 90 idle days (AADSTS700082), so `signin.keep-alive` is called when the component
//! says (weekly), and at least hourly to notice a new sign-in.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::task::JoinHandle;

use super::AppState;
use super::api::{ApiError, blocking};
use crate::bindings::signin::{AuthState, DeviceCode, PollStatus};
use crate::cli::diagnostic_json;
use crate::device::unix_now;

/// How long to wait before polling again when the component names a time already past.
const MIN_WAIT: Duration = Duration::from_millis(250);

/// The longest the keep-alive timer sleeps: it wakes at least this often, so a new
/// sign-in, a suspended machine or a clock change never make it oversleep a refresh.
const KEEP_ALIVE_CHECK: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct TimerState {
    /// Bumped by every start and sign-out, so an old timer's result is ignored.
    generation: u64,
    task: Option<JoinHandle<()>>,
    phase: Phase,
}

/// Where the sign-in this server started stands.
#[derive(Clone, Debug, Default)]
pub(crate) enum Phase {
    /// None started (or signed out since): the component's status tells.
    #[default]
    Idle,
    /// The timer is polling for this code.
    Polling(DeviceCode),
    /// It ended signed in: the component's status tells who.
    SignedIn,
    /// It failed with this diagnosis (`{code, severity, message, remedy}`).
    Failed(Value),
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

    /// Cancels the running timer and forgets the last outcome; returns the new generation.
    fn reset(&self) -> u64 {
        let mut state = self.lock();
        if let Some(task) = state.task.take() {
            task.abort();
        }
        state.phase = Phase::Idle;
        state.generation += 1;
        state.generation
    }

    /// Open Authentication Page: a new device code, then polling on this timer.
    pub async fn start(&self, app: &AppState) -> Result<DeviceCode, ApiError> {
        let _calls = self.calls.lock().await;
        let generation = self.reset();
        let code = blocking(&app.device, |device| device.signin_start(unix_now())).await?;
        self.spawn(app, generation, code.clone());
        Ok(code)
    }

    /// Signs out: cancels the timer, deletes the tokens and the account.
    pub async fn sign_out(&self, app: &AppState) -> Result<(), ApiError> {
        let _calls = self.calls.lock().await;
        self.reset();
        blocking(&app.device, |device| device.sign_out()).await
    }

    /// Where the last sign-in started here stands.
    pub fn phase(&self) -> Phase {
        self.lock().phase.clone()
    }

    /// Starts the polling task of `generation` for `code`.
    fn spawn(&self, app: &AppState, generation: u64, code: DeviceCode) {
        let task = tokio::spawn(poll_loop(app.clone(), generation));
        let mut state = self.lock();
        if state.generation == generation {
            state.task = Some(task);
            state.phase = Phase::Polling(code);
        } else {
            task.abort();
        }
    }

    fn finish(&self, generation: u64, phase: Phase) {
        let mut state = self.lock();
        if state.generation == generation {
            state.phase = phase;
            state.task = None;
        }
    }
}

/// Polls a sign-in left in progress by an earlier run of the server, if there is one.
pub(crate) fn resume(app: AppState) {
    tokio::spawn(async move {
        let status = blocking(&app.device, |device| device.signin_status(unix_now())).await;
        if let Ok(AuthState::InProgress(code)) = status {
            let _calls = app.signin.calls.lock().await;
            let generation = app.signin.reset();
            app.signin.spawn(&app, generation, code);
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

async fn poll_loop(app: AppState, generation: u64) {
    let timer = app.signin.clone();
    loop {
        let result = {
            let _calls = timer.calls.lock().await;
            if timer.lock().generation != generation {
                return;
            }
            blocking(&app.device, |device| device.signin_poll(unix_now())).await
        };
        let phase = match result {
            Ok(PollStatus::Pending(at)) => {
                tokio::time::sleep(wait_until(at)).await;
                continue;
            }
            Ok(PollStatus::PendingUnreachable(trouble)) => {
                // The status shows the diagnosis; polling goes on, it may recover.
                tracing::warn!(target: "mfp_host::serve", code = %trouble.diagnosis.code, "sign-in polls fail");
                tokio::time::sleep(wait_until(trouble.next_poll_at)).await;
                continue;
            }
            Ok(PollStatus::SignedIn(_)) => {
                tracing::info!(target: "mfp_host::serve", "the device is signed in");
                Phase::SignedIn
            }
            Ok(PollStatus::Failed(diagnosis)) => Phase::Failed(diagnostic_json(&diagnosis)),
            Err(error) => Phase::Failed(api_error_json(error)),
        };
        if let Phase::Failed(failure) = &phase {
            tracing::warn!(target: "mfp_host::serve", code = %failure["code"], "sign-in failed");
        }
        timer.finish(generation, phase);
        return;
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
            let result = blocking(&app.device, |device| device.signin_keep_alive(unix_now())).await;
            let wait = match result {
                Ok(at) => wait_until(at).min(KEEP_ALIVE_CHECK),
                Err(error) => {
                    if error.code != "sign-in-required" {
                        tracing::warn!(target: "mfp_host::serve", code = %error.code, "keep-alive refresh failed");
                    }
                    KEEP_ALIVE_CHECK
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}

/// A failed poll call as a diagnosis object.
fn api_error_json(error: ApiError) -> Value {
    serde_json::json!({
        "code": error.code,
        "severity": "error",
        "message": error.message,
        "remedy": error.remedy,
    })
}
