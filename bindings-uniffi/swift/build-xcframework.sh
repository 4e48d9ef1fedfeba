#!/usr/bin/env bash
# Builds what Package.swift needs, on a Mac with Rust and Xcode:
#   SixcastFFI.xcframework   the static libsixcast_ffi for this Mac, with the C header and
#                            module map UniFFI generates for it
#   Sources/Sixcast/Sixcast.swift   the generated Swift API
# Usage: build-xcframework.sh [--release]   (debug by default; CARGO_TARGET_DIR as for Cargo)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
profile=debug
cargo_flags=()
if [ "${1:-}" = --release ]; then
    profile=release
    cargo_flags=(--release)
fi

# Generates the Swift source, header and module map (and builds the debug library on the way).
"$here/../generate" swift
# The shipped library is built without the bindgen feature, so it holds no generator code.
(cd "$repo" && cargo build --quiet -p sixcast-ffi --lib "${cargo_flags[@]}")

rm -rf "$here/SixcastFFI.xcframework"
xcodebuild -create-xcframework \
    -library "$target/$profile/libsixcast_ffi.a" \
    -headers "$here/build/include" \
    -output "$here/SixcastFFI.xcframework" >/dev/null
echo "built $here/SixcastFFI.xcframework ($profile)"
