//! Generates the Kotlin, Swift and Python sources of the binding from the built library:
//! `uniffi-bindgen generate --library <libsixcast_ffi.so> --language kotlin --out-dir DIR`.

fn main() {
    uniffi::uniffi_bindgen_main();
}
