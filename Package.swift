// swift-tools-version:5.9
// The Swift package of sixcast for applications, by URL:
//     .package(url: "https://github.com/sixcast/sixcast", from: "<version>"), product "Sixcast"
// A version tag points at a commit that the release workflow (.github/workflows/release.yml) adds
// on top of the tagged one: it fills in releaseURL and releaseChecksum (the xcframework attached
// to the GitHub release) and adds the generated Sixcast.swift. Without them (on branches), or with
// SIXCAST_LOCAL_XCFRAMEWORK set, the package uses the xcframework that
// bindings-uniffi/swift/build-xcframework.sh builds. The binding's tests have their own manifest,
// bindings-uniffi/swift/Package.swift.
import Foundation
import PackageDescription

let releaseURL = ""
let releaseChecksum = ""

let local = releaseURL.isEmpty || ProcessInfo.processInfo.environment["SIXCAST_LOCAL_XCFRAMEWORK"] != nil
let ffi: Target = local
    ? .binaryTarget(name: "SixcastFFI", path: "bindings-uniffi/swift/SixcastFFI.xcframework")
    : .binaryTarget(name: "SixcastFFI", url: releaseURL, checksum: releaseChecksum)

let package = Package(
    name: "Sixcast",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Sixcast", targets: ["Sixcast"]),
    ],
    targets: [
        ffi,
        .target(name: "Sixcast", dependencies: ["SixcastFFI"], path: "bindings-uniffi/swift/Sources/Sixcast"),
    ]
)
