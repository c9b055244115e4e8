//! How a running `mfp-host relay` lets the panel of `mfp-host serve`, on the same state
//! folder, show it: `relay.json` in the state folder says where it listens and for whom,
//! and the relay holds an exclusive lock on that file for as long as it runs. The kernel
//! drops the lock when the process ends, however it ends, so a file left by a relay that
//! was killed reads as "not running"; no process id is trusted.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file, in the state folder.
pub const FILE_NAME: &str = "relay.json";

/// What a running relay process says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningRelay {
    pub pid: u32,
    /// The address it listens on (the bound one, port included).
    pub listen: String,
    /// The ranges that may relay; empty: this machine only.
    pub allow: Vec<String>,
    /// Whether devices must authenticate.
    pub authentication: bool,
    /// SHA-256 of the certificate it answers STARTTLS with.
    pub fingerprint: String,
}

/// The relay's lock on its file, held until it is dropped (the process ends).
#[derive(Debug)]
pub struct Announcement {
    _locked: File,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Writes `relay` into the state folder and locks it. `None` when another relay process
/// already announces itself there (two relays may share a state folder; the panel shows
/// the first).
pub fn announce(state_dir: &Path, relay: &RunningRelay) -> std::io::Result<Option<Announcement>> {
    // Not truncated before the lock is held: that would wipe another relay's file.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path(state_dir))?;
    // A panel reading the file holds a shared lock for a moment: try a little longer.
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(err)) => return Err(err),
        }
    }
    let text = serde_json::to_vec(relay).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(&text)?;
    file.sync_data()?;
    Ok(Some(Announcement { _locked: file }))
}

/// The relay process running on `state_dir`, if one is: its file is locked by it.
pub fn running(state_dir: &Path) -> Option<RunningRelay> {
    let mut file = File::open(path(state_dir)).ok()?;
    match file.try_lock_shared() {
        // Nobody holds it: the relay that wrote it has ended.
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut text = Vec::new();
            file.read_to_end(&mut text).ok()?;
            serde_json::from_slice(&text).ok()
        }
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(listen: &str) -> RunningRelay {
        RunningRelay {
            pid: std::process::id(),
            listen: listen.into(),
            allow: vec!["192.168.1.0/24".into()],
            authentication: true,
            fingerprint: "AB:CD".into(),
        }
    }

    #[test]
    fn a_relay_is_seen_while_its_announcement_is_held_and_not_after() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running(dir.path()), None, "no file yet");
        let held = announce(dir.path(), &relay("127.0.0.1:2525"))
            .unwrap()
            .expect("the first relay announces itself");
        assert_eq!(running(dir.path()), Some(relay("127.0.0.1:2525")));

        // A second relay on the same folder does not overwrite the first one's file.
        assert!(
            announce(dir.path(), &relay("127.0.0.1:2626"))
                .unwrap()
                .is_none()
        );
        assert_eq!(running(dir.path()), Some(relay("127.0.0.1:2525")));

        // Once the first ends, its file stays but reads as not running, and the next
        // relay's replaces it whole (a shorter text leaves nothing of the longer one).
        drop(held);
        assert_eq!(running(dir.path()), None);
        let _next = announce(dir.path(), &relay("[::1]:25")).unwrap().unwrap();
        assert_eq!(running(dir.path()), Some(relay("[::1]:25")));
    }
}
