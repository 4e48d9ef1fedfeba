// Tests of the binding's `files` module (bindings-uniffi/src/files.rs), as the Kotlin FilesTest
// checks it: contexts of this process on the loopback interface lo0 (macOS carries multicast
// there), so nothing is sent on the machine's real network.
import CryptoKit
import Foundation
import Sixcast
import XCTest

final class FilesTests: XCTestCase {
    private let config = Config(scope: "link", interfaces: ["lo0"], hopLimit: 1)
    private let reliableConfig = Config(scope: "link", interfaces: ["lo0"], hopLimit: 1, reliable: true)
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sixcast-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: folder)
    }

    /// A digest as the binding gives it, and `shasum -a 256` prints it: lowercase hex.
    private func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    func testAReceiverNeedsAFolderThatExists() throws {
        assertThrowsKind("InvalidConfig", "a missing folder") {
            _ = try FileReceiver(dir: self.folder.appendingPathComponent("missing").path)
        }
        let file = folder.appendingPathComponent("a-file")
        try Data([1]).write(to: file)
        assertThrowsKind("InvalidConfig", "a file, not a folder") {
            _ = try FileReceiver(dir: file.path, maxSize: 10, maxTransfers: 1)
        }
        let receiver = try FileReceiver(dir: folder.path)
        XCTAssertEqual(
            receiver.stats(),
            FileStats(frames: 0, otherMessages: 0, malformed: 0, refused: 0, unfollowed: 0, chunks: 0, duplicateChunks: 0))
    }

    func testSendFileRefusesBadNamesAndPassesBeforeSending() throws {
        let file = folder.appendingPathComponent("payload.bin")
        try Data((0..<100).map { UInt8($0) }).write(to: file)
        let context = try Context(config: reliableConfig)
        defer { context.close() }
        let channel = try context.channel(name: "swift-\(UUID().uuidString)")
        for bad in ["../x", "a/b", ".hidden", ""] {
            let error = assertThrowsKind("InvalidConfig", "name \(bad.isEmpty ? "(empty)" : bad)") {
                _ = try channel.sendFile(path: file.path, name: bad)
            }
            XCTAssertTrue(String(describing: error).contains("plain name"), String(describing: error))
        }
        assertThrowsKind("InvalidConfig", "0 passes") { _ = try channel.sendFile(path: file.path, passes: 0) }
        assertThrowsKind("Io", "a missing file") {
            _ = try channel.sendFile(path: self.folder.appendingPathComponent("missing.bin").path)
        }
        XCTAssertEqual(channel.stats().messagesSent, 0, "a refused file sends nothing")
    }

    func testAReceiverWithNothingToReceiveTimesOut() throws {
        let context = try Context(config: config)
        defer { context.close() }
        let channel = try context.channel(name: "swift-\(UUID().uuidString)")
        try channel.join()
        let receiver = try FileReceiver(dir: folder.path)
        let started = Date()
        assertThrowsKind("Timeout", "recv(200)") { _ = try receiver.recv(channel: channel, timeoutMs: 200) }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.2, "returned before the timeout")
        context.close()
        assertThrowsKind("Closed", "recv after close") { _ = try receiver.recv(channel: channel, timeoutMs: 100) }
    }

    func testAFileArrivesWholeAtAJoinedReceiver() throws {
        let name = "swift-\(UUID().uuidString)"
        let data = Data((0..<200 * 1024).map { _ in UInt8.random(in: 0...255) })
        let digest = hex(SHA256.hash(data: data))
        let source = folder.appendingPathComponent("source")
        let inbox = folder.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: false)
        let sourceFile = source.appendingPathComponent("payload.bin")
        try data.write(to: sourceFile)

        let receiverContext = try Context(config: config)
        let senderContext = try Context(config: reliableConfig)
        defer {
            senderContext.close()
            receiverContext.close()
        }
        // A FileReceiver does not join: the application does.
        let incoming = try receiverContext.channel(name: name)
        try incoming.join()
        let receiver = try FileReceiver(dir: inbox.path)
        let outgoing = try senderContext.channel(name: name)
        var sent: Result<SentFile, Error>?
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            sent = Result {
                // Not a file: the receiver counts it and passes over it.
                try outgoing.send(data: Data("not a file".utf8))
                return try outgoing.sendFile(path: sourceFile.path, name: "received.bin")
            }
            done.signal()
        }
        let outcome = try receiver.recv(channel: incoming, timeoutMs: 30_000)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "sendFile did not return")
        let file = try XCTUnwrap(sent).get()
        XCTAssertEqual(file.name, "received.bin")
        XCTAssertEqual(file.size, UInt64(data.count))
        XCTAssertEqual(file.sha256, digest)
        XCTAssertTrue((64...1232).contains(file.chunk), "chunk \(file.chunk)")

        guard case let .complete(receivedName, path, size, sha256, sender, resumed) = outcome else {
            return XCTFail("not complete: \(outcome)")
        }
        XCTAssertEqual(receivedName, "received.bin")
        XCTAssertEqual(path, inbox.appendingPathComponent("received.bin").path)
        XCTAssertEqual(size, UInt64(data.count))
        XCTAssertEqual(sha256, digest)
        XCTAssertEqual(sender, senderContext.nodeId())
        XCTAssertEqual(resumed, 0)
        let received = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(received, data)
        XCTAssertEqual(hex(SHA256.hash(data: received)), digest)
        // The partial file and its state are gone: only the named file is left.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: inbox.path), ["received.bin"])

        let chunks = (UInt64(data.count) + UInt64(file.chunk) - 1) / UInt64(file.chunk)
        let stats = receiver.stats()
        XCTAssertEqual(stats.chunks, chunks, "\(stats)")
        XCTAssertEqual(stats.duplicateChunks, 0, "\(stats)")
        XCTAssertEqual(stats.otherMessages, 1, "\(stats)")
        XCTAssertGreaterThanOrEqual(stats.frames, chunks + 1, "\(stats)")
        XCTAssertEqual(stats.malformed, 0, "\(stats)")
        XCTAssertEqual(stats.refused, 0, "\(stats)")
    }
}
