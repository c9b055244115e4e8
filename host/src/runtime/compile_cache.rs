//! A cache of the compiled component in the state dir, so the second start of the host
//! skips Cranelift. Entries are keyed by the SHA-256 of the component's bytes and by the
//! engine's compatibility hash (wasmtime version and configuration): a new component or a
//! new engine never loads a stale artifact.
//!
//! Deserializing compiled code trusts its bytes: wasmtime maps them as executable code.
//! So an entry is loaded only when it proves it was written by this device for this very
//! entry: each file starts with an HMAC-SHA256, under a key derived from the device's
//! `secret.key` (see `Sealer::compile_cache_key`), over the entry's name and the compiled
//! bytes. The bytes are read once, checked, and deserialized from that same memory, so a
//! file swapped after the check is never what runs. A file without a valid tag (planted,
//! altered, cut short, or written by another device or an earlier build) is discarded
//! with a warning and the component compiled again. Files are written whole, 0600, under a
//! temporary name and renamed into place, in a `cache/` dir private to this user (0700).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use ring::hmac;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::state_dir;

/// Starts every cache file; the format's version.
const MAGIC: &[u8; 8] = b"MFPCWAS1";
/// Bytes of the HMAC-SHA256 tag after [`MAGIC`].
const TAG_LEN: usize = 32;

/// Whether a start found its compiled component in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code; no compilation.
    Hit,
    /// Compiled now and stored for next time.
    Stored,
    /// Compiled now; the cache is off or could not be written.
    Compiled,
}

/// The cache file for `bytes` under `engine`.
pub fn entry_path(dir: &Path, engine: &Engine, bytes: &[u8]) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let component = hex::encode(&Sha256::digest(bytes)[..16]);
    dir.join(format!("{component}-{:016x}.cwasm", engine_hash.finish()))
}

/// Loads the compiled component from `dir`, or compiles `bytes` and stores the result.
/// `key` authenticates the cache's files (see the module's documentation).
pub fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    dir: Option<&Path>,
    key: &[u8; 32],
) -> wasmtime::Result<(Component, CacheOutcome)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
    };
    // The cache dir gets the state dir's rules: created 0700, closed if open to others; one
    // that cannot be trusted is not used (the tag would refuse its files anyway).
    if let Err(problem) = state_dir::ensure_private_dir(dir) {
        tracing::warn!("not using the compile cache: {problem}");
        return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let path = entry_path(dir, engine, bytes);
    match load(engine, &key, &path) {
        Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
        Ok(None) => {}
        Err(why) => {
            tracing::warn!(
                "discarding the compiled component cache entry {}: {why}; compiling again",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
        }
    }
    let component = Component::new(engine, bytes)?;
    let outcome = match store(&component, &key, &path) {
        Ok(()) => CacheOutcome::Stored,
        Err(err) => {
            tracing::warn!("could not write the compiled component cache: {err}");
            CacheOutcome::Compiled
        }
    };
    Ok((component, outcome))
}

/// The entry at `path` if it exists and its tag proves it: `Ok(None)` when there is none,
/// `Err` (why) when there is one that must not be loaded.
fn load(engine: &Engine, key: &hmac::Key, path: &Path) -> Result<Option<Component>, String> {
    let file = match std::fs::read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("it cannot be read: {e}")),
    };
    let artifact = file
        .strip_prefix(MAGIC.as_slice())
        .filter(|rest| rest.len() >= TAG_LEN)
        .ok_or("it is not a cache file of this host")?;
    let (tag, artifact) = artifact.split_at(TAG_LEN);
    hmac::verify(key, &signed_message(path, artifact), tag)
        .map_err(|_| "it was not written by this device for this entry (authentication failed)")?;
    // SAFETY: these bytes carry a valid tag under this device's key over this entry's name,
    // which binds the component's SHA-256 and the engine's compatibility hash: they are
    // exactly what `store` below wrote from `Component::serialize` of the same component
    // under the same engine configuration. They are deserialized from this memory, not
    // read again from the file.
    unsafe { Component::deserialize(engine, artifact) }
        .map(Some)
        .map_err(|e| format!("wasmtime refused it: {e}"))
}

/// What the tag covers: the entry's file name, then the compiled bytes.
fn signed_message(path: &Path, artifact: &[u8]) -> Vec<u8> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut message = Vec::with_capacity(name.len() + 1 + artifact.len());
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.extend_from_slice(artifact);
    message
}

fn store(component: &Component, key: &hmac::Key, path: &Path) -> anyhow::Result<()> {
    let artifact = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tag = hmac::sign(key, &signed_message(path, &artifact));
    let tmp = state_dir::temp_path_beside(path);
    let written = state_dir::create_private_file(&tmp).and_then(|mut file| {
        use std::io::Write;
        file.write_all(MAGIC)?;
        file.write_all(tag.as_ref())?;
        file.write_all(&artifact)?;
        file.sync_all()
    });
    let placed = written.and_then(|()| std::fs::rename(&tmp, path));
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed?;
    Ok(())
}
