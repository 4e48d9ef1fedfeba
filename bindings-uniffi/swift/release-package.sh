#!/usr/bin/env bash
# Prepares a release of the Swift package by URL, on a Mac after build-xcframework.sh --release
# (.github/workflows/release.yml runs it for each version tag):
#   1. zips SixcastFFI.xcframework into SixcastFFI.xcframework.zip, the release's asset;
#   2. writes URL and the zip's checksum into releaseURL and releaseChecksum of the root
#      Package.swift, which then downloads the xcframework instead of using the local one.
# The workflow then commits that Package.swift with the generated Sources/Sixcast/Sixcast.swift.
# Usage: release-package.sh URL   (where the zip will be downloaded from)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$(cd "$here/../.." && pwd)/Package.swift"
url="${1:?usage: release-package.sh URL}"

cd "$here"
rm -f SixcastFFI.xcframework.zip
# ditto keeps the bundle's symbolic links and attributes, as Apple recommends for xcframeworks.
ditto -c -k --keepParent SixcastFFI.xcframework SixcastFFI.xcframework.zip
checksum="$(swift package compute-checksum SixcastFFI.xcframework.zip)"

URL="$url" CHECKSUM="$checksum" perl -pi -e '
    s/^let releaseURL = ".*"$/let releaseURL = "$ENV{URL}"/;
    s/^let releaseChecksum = ".*"$/let releaseChecksum = "$ENV{CHECKSUM}"/;
' "$manifest"
if ! grep -qxF "let releaseURL = \"$url\"" "$manifest" ||
    ! grep -qxF "let releaseChecksum = \"$checksum\"" "$manifest"; then
    echo "release-package.sh: $manifest has no releaseURL or releaseChecksum line to fill in" >&2
    exit 1
fi
echo "$manifest: $url, checksum $checksum"
