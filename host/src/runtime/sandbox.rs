//! What of the system the component may touch: `wasi:random/random` (the Message-ID, the
//! MIME boundary, the sign-in's PKCE verifier), and nothing more. The component is built
//! without WASI's std glue, so no clocks, pollables, streams or stdio are linked: a
//! component that imports them, or the filesystem, sockets or HTTP, fails to instantiate
//! instead of running with hidden power (or blocking in a host call past its deadline).
//!
//! The two functions of `wasi:random/random` are answered here from the operating
//! system's generator, so a call builds no WASI context (no environment, preopens or
//! stdio to leave empty): there is nothing else to grant.

use wasmtime::component::{HasData, Linker};

use crate::bindings::wasi::random::random;

/// WASI packages the host links; any other import is refused at instantiation.
pub const GRANTED_WASI: &[&str] = &["wasi:random/random"];

/// The most bytes one `get-random-bytes` may ask for. The component asks for 32 at a
/// time; a request for more than this traps rather than making the host allocate it.
pub const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// `wasi:random/random`: the operating system's cryptographically secure generator
/// (`getrandom`), as WASI requires of it.
pub struct SystemRandom;

impl random::Host for SystemRandom {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM_BYTES {
            wasmtime::bail!("get-random-bytes asked for {len} bytes, more than {MAX_RANDOM_BYTES}");
        }
        let mut bytes = vec![0; usize::try_from(len)?];
        getrandom::fill(&mut bytes)?;
        Ok(bytes)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(getrandom::u64()?)
    }
}

/// Binds `wasi:random/random` to [`SystemRandom`], which holds no state.
struct RandomCapability;
impl HasData for RandomCapability {
    type Data<'a> = SystemRandom;
}

/// Links exactly the interfaces in [`GRANTED_WASI`].
pub fn add_granted_wasi<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    random::add_to_linker::<T, RandomCapability>(linker, |_| SystemRandom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use random::Host;

    #[test]
    fn random_bytes_are_fresh_and_a_huge_request_traps() {
        let a = SystemRandom.get_random_bytes(32).unwrap();
        let b = SystemRandom.get_random_bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_ne!(
            SystemRandom.get_random_u64().unwrap(),
            SystemRandom.get_random_u64().unwrap()
        );
        assert_eq!(
            SystemRandom
                .get_random_bytes(MAX_RANDOM_BYTES)
                .unwrap()
                .len(),
            MAX_RANDOM_BYTES as usize
        );
        let err = SystemRandom
            .get_random_bytes(MAX_RANDOM_BYTES + 1)
            .unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        assert!(SystemRandom.get_random_bytes(u64::MAX).is_err());
    }
}
