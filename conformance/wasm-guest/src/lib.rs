//! The Switchboard conformance runner as a raw C-ABI WebAssembly module.
//!
//! Exports `alloc(len) -> ptr`, `dealloc(ptr, len)` and `run(ptr, len) -> u64`: `run`
//! reads a conformance vector (JSON) from guest memory, plays it against the engine with
//! [`conformance_core::run_json`] — the same code the native runner uses — and returns
//! the result JSON packed as `(ptr << 32) | len`, to be freed by the host with
//! `dealloc(ptr, len)`. The module imports nothing.
//!
//! Randomness: the engine never asks for any, but jsonschema's hash maps (ahash with
//! `runtime-rng`) seed themselves from getrandom 0.3 on first use. A raw module has no
//! source of entropy, so [`__getrandom_v03_custom`] fills a fixed pattern: hash seeds are
//! then the same on every run, which is what a conformance runner wants anyway (the
//! seeds never reach an output, they only order internal hash tables). The build must
//! pass `--cfg getrandom_backend="custom"` (scripts/conformance.sh does).

use std::alloc::{alloc as raw_alloc, dealloc as raw_dealloc, Layout};

/// Allocate `len` bytes (alignment 1) for the host to write into.
#[no_mangle]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return std::ptr::NonNull::<u8>::dangling().as_ptr();
    }
    match Layout::from_size_align(len, 1) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { raw_alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Free a buffer from [`alloc`] or a packed result of [`run`].
///
/// # Safety
/// `ptr`/`len` must describe a live allocation made by this module with that length.
#[no_mangle]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, len: usize) {
    if len != 0 {
        if let Ok(layout) = Layout::from_size_align(len, 1) {
            raw_dealloc(ptr, layout);
        }
    }
}

/// Run the vector JSON at `ptr..ptr+len`; returns the result JSON packed as
/// `(ptr << 32) | len`.
///
/// # Safety
/// `ptr` must point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn run(ptr: *const u8, len: usize) -> u64 {
    let bytes = std::slice::from_raw_parts(ptr, len);
    let out = match std::str::from_utf8(bytes) {
        Ok(text) => conformance_core::run_json(text),
        Err(_) => r#"{"error":"the vector is not UTF-8"}"#.to_string(),
    };
    let boxed: Box<[u8]> = out.into_bytes().into_boxed_slice();
    let len = boxed.len();
    let ptr = Box::into_raw(boxed) as *mut u8;
    ((ptr as usize as u64) << 32) | len as u64
}

/// getrandom 0.3's `custom` backend for this module (see the crate docs): a fixed,
/// non-secret byte pattern. Only ever used for hash-table seeds.
///
/// # Safety
/// `dest` must point to `len` writable bytes (getrandom guarantees it).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[no_mangle]
pub unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    fixed_pattern(std::slice::from_raw_parts_mut(dest, len));
    Ok(())
}

/// The non-secret bytes both getrandom backends hand out.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn fixed_pattern(out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(151).wrapping_add(89);
    }
}

/// getrandom 0.2's backend (jsonwebtoken links it, the engine never calls it).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn fill_v02(out: &mut [u8]) -> Result<(), getrandom02::Error> {
    fixed_pattern(out);
    Ok(())
}
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
getrandom02::register_custom_getrandom!(fill_v02);
