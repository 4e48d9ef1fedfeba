//! Link settings napi-rs needs for a Node addon (on macOS: resolve Node's symbols at load time).

fn main() {
    napi_build::setup();
}
