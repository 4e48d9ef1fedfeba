// Tests of the binding's decodeManifest (bindings-uniffi/src/wire.rs), the codec of MANIFEST
// datagrams, against every decode case of tests/conformance/vectors/manifest.json.
import Foundation
import Sixcast
import XCTest

final class ManifestTests: XCTestCase {
    private func decodeCases() throws -> [[String: Any]] {
        try XCTUnwrap(Vectors.load("manifest.json")["decode"] as? [[String: Any]])
    }

    func testValidManifestsDecodeToTheirFields() throws {
        let valid = try decodeCases().filter { $0["reason"] == nil }
        XCTAssertFalse(valid.isEmpty)
        for vector in valid {
            let name = vector["name"] as! String
            let decoded = try decodeManifest(datagram: Data(hex: vector["manifest"] as! String))
            XCTAssertEqual(decoded.sender, vector["sender"] as! String, name)
            XCTAssertEqual(decoded.number, UInt64(vector["number"] as! Int), name)
            XCTAssertEqual(decoded.digests.map(hex), vector["digests"] as! [String], name)
            XCTAssertTrue(decoded.digests.allSatisfy { $0.count == 16 }, "\(name): digests of 16 bytes")
        }
    }

    func testInvalidManifestsAreMalformedWithTheirReason() throws {
        let invalid = try decodeCases().filter { $0["reason"] != nil }
        XCTAssertFalse(invalid.isEmpty)
        for vector in invalid {
            let name = vector["name"] as! String
            let error = assertThrowsKind("Malformed", name) {
                _ = try decodeManifest(datagram: Data(hex: vector["manifest"] as! String))
            }
            let reason = vector["reason"] as! String
            XCTAssertTrue(String(describing: error).contains("(\(reason))"), "\(name): \(String(describing: error))")
        }
    }

    func testDatagramsOfTheOtherLayerAreMalformedHere() throws {
        let message = try packMessages(
            sender: "0000000000000001", firstSeq: 0, maxDatagram: 1232, messages: [Data("x".utf8)])
        XCTAssertEqual(message.count, 1)
        let error = assertThrowsKind("Malformed", "a batch of messages") {
            _ = try decodeManifest(datagram: message[0])
        }
        XCTAssertTrue(String(describing: error).contains("(unknown_type)"), String(describing: error))
    }

    private func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}
