//! A cache of the compiled component in the state dir, so the second start of the host
//! skips Cranelift. Entries are keyed by the SHA-256 of the component's bytes and by the
//! engine's compatibility hash (wasmtime version and configuration): a new component or a
//! new engine never loads a stale artifact.
//!
//! Deserializing compiled code trusts its bytes. The cache lives in the state dir, which
//! the host creates private to its user (mode 0700), and only this process writes it, via
//! a temporary file renamed into place.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

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
pub fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    dir: Option<&Path>,
) -> wasmtime::Result<(Component, CacheOutcome)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
    };
    let path = entry_path(dir, engine, bytes);
    if path.exists() {
        // SAFETY: the file was written by `store` below from `Component::serialize` of the
        // same bytes under the same engine configuration (both are in the key), in a
        // directory private to this user. A damaged file fails the header checks and is
        // recompiled.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, CacheOutcome::Hit)),
            Err(err) => {
                tracing::warn!("compiled component cache entry unusable, recompiling: {err}")
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    let outcome = match store(&component, dir, &path) {
        Ok(()) => CacheOutcome::Stored,
        Err(err) => {
            tracing::warn!("could not write the compiled component cache: {err}");
            CacheOutcome::Compiled
        }
    };
    Ok((component, outcome))
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let serialized = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
