//! getrandom's `custom` backends (0.3 and 0.2) for the JS hosts' module.
//!
//! The workspace builds every wasm32-unknown-unknown artifact with
//! `--cfg getrandom_backend="custom"` (`.cargo/config.toml`), so the conformance guest
//! can run without JS glue. In this module the backend is the Web Crypto API, which
//! every supported runtime (Node ≥ 20, Deno, Bun, workerd) has as
//! `globalThis.crypto`. The engine never asks for randomness; the only caller is
//! jsonschema's `ahash` seeding its hash tables (0.3). jsonwebtoken links getrandom 0.2
//! but never calls it when verifying; its backend is the same function.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues(buf)`: fills the view; throws for more than 65 536 bytes.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<(), JsValue>;
}

/// Web Crypto's per-call limit, in bytes.
const MAX_CHUNK: usize = 65_536;

/// Fill `buf` from Web Crypto; `false` if it threw.
fn fill(buf: &mut [u8]) -> bool {
    buf.chunks_mut(MAX_CHUNK)
        .all(|chunk| get_random_values(chunk).is_ok())
}

/// The backend getrandom 0.3 calls (see the module docs).
///
/// # Safety
/// `dest` must point to `len` writable bytes; getrandom guarantees it.
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    // SAFETY: the caller (getrandom) passes a valid, writable buffer of `len` bytes.
    let buf = unsafe { std::slice::from_raw_parts_mut(dest, len) };
    if fill(buf) {
        Ok(())
    } else {
        Err(getrandom::Error::UNSUPPORTED)
    }
}

/// The backend getrandom 0.2 calls.
fn fill_v02(buf: &mut [u8]) -> Result<(), getrandom02::Error> {
    if fill(buf) {
        Ok(())
    } else {
        Err(getrandom02::Error::UNSUPPORTED)
    }
}
getrandom02::register_custom_getrandom!(fill_v02);
