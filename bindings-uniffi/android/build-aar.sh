#!/usr/bin/env bash
# Builds the Android library of sixcast, build/outputs/aar/sixcast-release.aar, on a machine with
# Rust (and the Rust targets aarch64-linux-android, armv7-linux-androideabi, x86_64-linux-android),
# cargo-ndk, the Android NDK (ANDROID_NDK_HOME) and SDK (ANDROID_HOME), Java 17 and Gradle:
#   1. generates the Kotlin source (../generate kotlin, which builds the host's debug library);
#   2. builds the release libsixcast_ffi for arm64-v8a, armeabi-v7a and x86_64 into build/jniLibs;
#   3. runs the Gradle build of this folder (build.gradle.kts).
# CARGO_TARGET_DIR as for Cargo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

"$here/../generate" kotlin
rm -rf "$here/build/jniLibs"
# The platform is the API level the library links against: build.gradle.kts's minSdk.
(cd "$repo" && cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$here/build/jniLibs" \
    build --release --locked -p sixcast-ffi --lib)
gradle --no-daemon -p "$here" assembleRelease
echo "built $here/build/outputs/aar/sixcast-release.aar"
