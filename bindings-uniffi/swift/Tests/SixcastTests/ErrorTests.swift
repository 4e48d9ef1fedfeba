// Tests of the binding's `error` module (bindings-uniffi/src/error.rs): the kinds table and
// every case of tests/conformance/vectors/errors.json, each run through the Swift API.
import Foundation
import Sixcast
import XCTest

final class ErrorTests: XCTestCase {
    func testEveryKindArrivesAsItsOwnCaseWithItsMessage() {
        XCTAssertEqual(Vectors.caseNames.count, 10)
        for (kind, name) in Vectors.caseNames {
            let error = assertThrowsKind(kind, "raiseErrorKind(\(kind))") { try raiseErrorKind(kind: kind) }
            XCTAssertEqual(error.map(caseName), name)
            XCTAssertTrue(String(describing: error).contains(kind))
        }
        assertThrowsKind("InvalidConfig", "an unknown kind") { try raiseErrorKind(kind: "NoSuchKind") }
    }

    func testEveryCaseFailsWithItsKindOrSucceeds() throws {
        let cases = try XCTUnwrap(Vectors.load("errors.json")["cases"] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty)
        for vector in cases {
            let label = String(describing: vector)
            if let kind = vector["error"] as? String {
                assertThrowsKind(kind, label) { try run(vector) }
            } else {
                XCTAssertNoThrow(try run(vector), label)
            }
        }
    }

    func testTheRecordDefaultsAreTheCoreDefaults() throws {
        XCTAssertEqual(Config(), defaultConfig())
        try validateConfig(config: Config())
    }

    /// Performs a case's `op` through the public API (errors.json's `_comment` lists the ops).
    private func run(_ vector: [String: Any]) throws {
        switch vector["op"] as! String {
        case "group_address":
            _ = try groupAddressBytes(
                name: nameBytes(vector), profile: vector["profile"] as! String,
                scope: vector["scope"] as! String, rp: vector["rp"] as? String)
        case "parse_profile":
            try validateConfig(config: Config(profile: vector["profile"] as! String, rp: vector["rp"] as? String))
        case "parse_scope":
            try validateConfig(config: Config(scope: vector["scope"] as! String))
        case "config":
            try validateConfig(config: configWith(vector["set"] as! [String: Any]))
        case "open_context":
            // Refused before a socket exists: nothing touches the network.
            try Context(config: configWith(vector["set"] as! [String: Any])).close()
        case "decode":
            _ = try decodeDatagram(datagram: Data(hex: vector["hex"] as! String))
        case "pack":
            let messages = (vector["messages_hex"] as! [String]).map { Data(hex: $0) }
            _ = try packMessages(
                sender: "0000000000000001", firstSeq: 0, maxDatagram: UInt32(vector["max_datagram"] as! Int),
                messages: messages)
        case let op:
            XCTFail("errors.json has an op this test does not know: \(op)")
        }
    }

    /// The default configuration with errors.json's snake_case fields changed.
    private func configWith(_ fields: [String: Any]) -> Config {
        var config = Config()
        for (field, value) in fields {
            let number = (value as? NSNumber)?.uint64Value ?? 0
            switch field {
            case "profile": config.profile = value as! String
            case "rp": config.rp = value as? String
            case "scope": config.scope = value as! String
            case "port": config.port = (value as? NSNumber).map { UInt16(truncating: $0) }
            case "interfaces": config.interfaces = value as! [String]
            case "hop_limit": config.hopLimit = UInt8(number)
            case "loopback": config.loopback = value as! Bool
            case "max_datagram_size": config.maxDatagramSize = number
            case "max_message_size": config.maxMessageSize = number
            case "linger_ms": config.lingerMs = number
            case "queue_capacity": config.queueCapacity = number
            case "recv_buffer": config.recvBuffer = number
            case "reassembly_timeout_ms": config.reassemblyTimeoutMs = number
            case "reassembly_memory": config.reassemblyMemory = number
            default: XCTFail("errors.json sets a field this test does not know: \(field)")
            }
        }
        return config
    }
}
