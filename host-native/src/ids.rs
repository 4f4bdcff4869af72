//! Randomness the host supplies to the engine: client ids and the engine seed.

use std::sync::atomic::{AtomicU64, Ordering};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Fill `buf` from the OS; if that ever fails, fall back to a time-and-counter mix so
/// ids stay unique (they are not secrets).
fn fill(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut x =
        crate::clock::wall_now().0 ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32);
    for b in buf.iter_mut() {
        // splitmix64 step
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        *b = (z ^ (z >> 31)) as u8;
    }
}

/// A random URL-safe id of `len` characters (6 bits of entropy each).
pub fn random_id(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 63)] as char)
        .collect()
}

/// A 22-character client id (132 bits).
pub fn client_id() -> String {
    random_id(22)
}

/// A random seed for the engine's id generator.
pub fn seed() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_22_url_safe_chars_and_differ() {
        let a = client_id();
        let b = client_id();
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }
}
