//! Randomness for codes and tokens. The operating system's generator (in the browser,
//! `Crypto.getRandomValues`); should it ever fail, a counter-based mix keeps values unique,
//! which is all a stand-in needs: these tokens guard nothing real, and a fake must not
//! panic.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

static FALLBACK: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    for chunk in buf.chunks_mut(8) {
        // SplitMix64 over a shared counter.
        let mut z = FALLBACK.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    fill(&mut buf);
    buf
}

/// A random number in `low..=high`.
pub fn between(low: u64, high: u64) -> u64 {
    let mut buf = [0; 8];
    fill(&mut buf);
    let span = high.saturating_sub(low).saturating_add(1);
    low + u64::from_le_bytes(buf) % span.max(1)
}

/// `n` random bytes as unpadded base64url.
pub fn base64url(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(bytes(n))
}

/// A random (version 4) UUID, as Microsoft writes trace and correlation ids.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `n` random characters from `alphabet` (ASCII).
pub fn chars(n: usize, alphabet: &[u8]) -> String {
    if alphabet.is_empty() {
        return String::new();
    }
    (0..n)
        .map(|_| alphabet[between(0, alphabet.len() as u64 - 1) as usize] as char)
        .collect()
}

/// `n` random upper-case hexadecimal digits.
pub fn hex_upper(n: usize) -> String {
    chars(n, b"0123456789ABCDEF")
}
