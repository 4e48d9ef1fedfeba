// swift-tools-version:5.9
// The Swift binding of sixcast. Run ./build-xcframework.sh first: it builds the Rust library
// into SixcastFFI.xcframework and generates Sources/Sixcast/Sixcast.swift (both build products,
// not committed).
import PackageDescription

let package = Package(
    name: "Sixcast",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Sixcast", targets: ["Sixcast"]),
    ],
    targets: [
        .binaryTarget(name: "SixcastFFI", path: "SixcastFFI.xcframework"),
        .target(name: "Sixcast", dependencies: ["SixcastFFI"], path: "Sources/Sixcast"),
        .testTarget(name: "SixcastTests", dependencies: ["Sixcast"], path: "Tests/SixcastTests"),
    ]
)
