//! Arguments and results as C sees them: NUL-terminated UTF-8 strings, byte buffers with a
//! length, handles that must not be NULL, and strings the library allocates for the caller.

use std::ffi::{CStr, CString, c_char};

use crate::error::{Failure, Result};

/// The text at `pointer`, which must not be NULL and must be UTF-8.
///
/// # Safety
/// `pointer` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn arg<'a>(pointer: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: per the contract above.
    unsafe { optional_arg(pointer, what) }?
        .ok_or_else(|| Failure::invalid_argument(format!("{what} is NULL")))
}

/// The text at `pointer`, or `None` for NULL.
///
/// # Safety
/// `pointer` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn optional_arg<'a>(
    pointer: *const c_char,
    what: &str,
) -> Result<Option<&'a str>> {
    if pointer.is_null() {
        return Ok(None);
    }
    // SAFETY: per the contract above.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map(Some)
        .map_err(|_| Failure::invalid_argument(format!("{what} is not UTF-8")))
}

/// The `len` bytes at `pointer`; NULL is allowed only with a length of 0.
///
/// # Safety
/// `pointer` is NULL or points to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes<'a>(pointer: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if pointer.is_null() {
        return match len {
            0 => Ok(&[]),
            _ => Err(Failure::invalid_argument(format!(
                "{what} is NULL with length {len}"
            ))),
        };
    }
    // SAFETY: per the contract above.
    Ok(unsafe { std::slice::from_raw_parts(pointer, len) })
}

/// The object behind a handle, which must not be NULL.
///
/// # Safety
/// `handle` is NULL or a live handle of type `T` from this library that outlives `'a`.
pub(crate) unsafe fn handle<'a, T>(handle: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: per the contract above.
    unsafe { handle.as_ref() }.ok_or_else(|| Failure::invalid_argument(format!("{what} is NULL")))
}

/// Stores `value` through `out`, which must not be NULL.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn store<T>(out: *mut T, value: T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Failure::invalid_argument(format!("{what} is NULL")));
    }
    // SAFETY: per the contract above.
    unsafe { out.write(value) };
    Ok(())
}

/// Stores a copy of `value` for the caller through `out` (NULL for `None`), freeing the copy
/// again when `out` is NULL; `what` names `out` in that error.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn store_text(
    out: *mut *mut c_char,
    value: impl Into<Option<String>>,
    what: &str,
) -> Result<()> {
    let value = value.into().map_or(std::ptr::null_mut(), owned);
    // SAFETY: per the contract above.
    unsafe { store(out, value, what) }.inspect_err(|_| {
        // SAFETY: `value` is NULL or was made just now by `owned` and is not shared.
        unsafe { sixcast_string_free(value) };
    })
}

/// A string for the caller, who frees it with `sixcast_string_free`.
pub(crate) fn owned(text: impl Into<String>) -> *mut c_char {
    // Text from the library never holds NUL; should it, it is cut short rather than lost.
    let text = text.into().replace('\0', " ");
    CString::new(text).unwrap_or_default().into_raw()
}

/// A string whose memory the library owns (inside a message, say).
pub(crate) fn kept(text: impl Into<String>) -> CString {
    CString::new(text.into().replace('\0', " ")).unwrap_or_default()
}

/// Frees a string the library returned. NULL is ignored.
///
/// # Safety
/// `text` is NULL or a string this library returned for the caller to free, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_string_free(text: *mut c_char) {
    if !text.is_null() {
        // SAFETY: per the contract above, it came from `CString::into_raw` in `owned`.
        drop(unsafe { CString::from_raw(text) });
    }
}
