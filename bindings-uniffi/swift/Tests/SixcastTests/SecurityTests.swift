// Tests of the binding's `crypto` module (bindings-uniffi/src/crypto.rs) against every case of
// tests/conformance/vectors/security.json: key files, tokens, sealing, signing and opening
// datagrams.
import Foundation
import Sixcast
import XCTest

final class SecurityTests: XCTestCase {
    private func cases(_ field: String) throws -> [[String: Any]] {
        let cases = try XCTUnwrap(Vectors.load("security.json")[field] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty, field)
        return cases
    }

    private func readKey(_ kind: String, _ text: String) throws -> Any {
        switch kind {
        case "channel": return try ChannelKey.fromFileText(text: text)
        case "signing": return try SigningKey.fromFileText(text: text)
        case "token": return try Token.fromFileText(text: text)
        default: return try PublicKey.fromFileText(text: text)
        }
    }

    private func open(_ vector: [String: Any]) throws -> OpenedDatagram {
        try openDatagram(
            group: vector["group"] as! String,
            datagram: Data(hex: vector["datagram"] as! String),
            keys: (vector["keys"] as! [String]).map { try ChannelKey.fromFileText(text: $0) },
            trusted: (vector["trusted"] as! [String]).map { try PublicKey.fromFileText(text: $0) },
            issuers: (vector["issuers"] as! [String]).map { try PublicKey.fromFileText(text: $0) },
            now: UInt64(vector["now"] as! Int))
    }

    func testEveryKeyFileReadsAndWritesBack() throws {
        for entry in try cases("keys") {
            let name = entry["name"] as! String
            let file = entry["file"] as! String
            switch try readKey(entry["kind"] as! String, file) {
            case let key as ChannelKey:
                XCTAssertEqual(key.toFileText(), file, name)
                XCTAssertEqual(key.id(), UInt32(entry["id"] as! String, radix: 16), name)
                let again = try ChannelKey.fromBytes(id: key.id(), secret: Data(hex: entry["secret"] as! String))
                XCTAssertEqual(again.toFileText(), file, name)
            case let key as SigningKey:
                XCTAssertEqual(key.toFileText(), file, name)
                XCTAssertEqual(key.publicKey().toBytes(), Data(hex: entry["public"] as! String), name)
                XCTAssertEqual(try SigningKey.fromSeed(seed: Data(hex: entry["seed"] as! String)).toFileText(), file, name)
            case let key as PublicKey:
                XCTAssertEqual(key.toFileText(), file, name)
                XCTAssertEqual(key.fingerprint(), entry["fingerprint"] as! String, name)
                XCTAssertEqual(try PublicKey.fromBytes(key: key.toBytes()).toFileText(), file, name)
            default:
                XCTFail("\(name): unknown key kind")
            }
        }
    }

    func testEveryTokenFileReadsWritesBackAndIsIssuedAgain() throws {
        let signingKeys = try cases("keys").filter { $0["kind"] as! String == "signing" }.map {
            try SigningKey.fromFileText(text: $0["file"] as! String)
        }
        for entry in try cases("tokens") {
            let name = "token until \(entry["not_after"] as! Int)"
            let file = entry["file"] as! String
            let token = try Token.fromFileText(text: file)
            XCTAssertEqual(token.toFileText(), file, name)
            XCTAssertEqual(token.subject().toBytes(), Data(hex: entry["subject"] as! String), name)
            XCTAssertEqual(token.group(), entry["group"] as! String, name)
            XCTAssertEqual(token.notAfter(), UInt64(entry["not_after"] as! Int), name)
            XCTAssertEqual(token.issuer(), entry["issuer"] as! String, name)
            XCTAssertEqual(try Token.fromBytes(bytes: token.toBytes()).toFileText(), file, name)
            let issuer = try XCTUnwrap(signingKeys.first { $0.publicKey().fingerprint() == token.issuer() }, name)
            let issued = try Token.issue(issuer: issuer, subject: token.subject(), group: token.group(), notAfter: token.notAfter())
            XCTAssertEqual(issued.toFileText(), file, name)
        }
    }

    func testEveryInvalidKeyFileFailsWithItsKind() throws {
        for vector in try cases("invalid_key_files") {
            assertThrowsKind(vector["error"] as! String, vector["name"] as! String) {
                _ = try self.readKey(vector["kind"] as! String, vector["text"] as! String)
            }
        }
        assertThrowsKind("InvalidConfig", "a 31-byte secret") { _ = try ChannelKey.fromBytes(id: 1, secret: Data(count: 31)) }
    }

    func testEverySealCaseGivesItsBytesAndOpensBack() throws {
        for vector in try cases("seal") {
            let name = vector["name"] as! String
            let channelKey = try (vector["channel_key"] as? String).map { try ChannelKey.fromFileText(text: $0) }
            let signingKey = try (vector["signing_key"] as? String).map { try SigningKey.fromFileText(text: $0) }
            let token = try (vector["token"] as? String).map { try Token.fromFileText(text: $0) }
            let group = vector["group"] as! String
            let plain = Data(hex: vector["plain"] as! String)
            let sealed = try sealDatagram(
                group: group, plain: plain, channelKey: channelKey, signingKey: signingKey, token: token)
            XCTAssertEqual(sealed, Data(hex: vector["protected"] as! String), name)
            let opened = try openDatagram(
                group: group, datagram: sealed, keys: channelKey.map { [$0] } ?? [],
                trusted: signingKey.map { [$0.publicKey()] } ?? [], issuers: [], now: token?.notAfter())
            XCTAssertEqual(opened, .accepted(plain: plain), name)
        }
    }

    func testEveryOpenCaseOpensOrIsRefusedWithItsReason() throws {
        let reasons = dropReasons()
        for vector in try cases("open") {
            let name = vector["name"] as! String
            switch vector["kind"] as? String {
            case nil:
                let plain = Data(hex: vector["plain"] as! String)
                XCTAssertEqual(try open(vector), .accepted(plain: plain), name)
                _ = try decodeDatagram(datagram: plain)
            case "malformed":
                let error = assertThrowsKind("Malformed", name) { _ = try self.open(vector) }
                let reason = vector["reason"] as! String
                XCTAssertTrue(String(describing: error).contains("(\(reason))"), "\(name): \(String(describing: error))")
            default:
                let reason = vector["reason"] as! String
                XCTAssertTrue(reasons.contains(reason), name)
                XCTAssertEqual(try open(vector), .dropped(reason: reason), name)
            }
        }
    }

    func testGeneratedKeysRoundTripThroughTheirFiles() throws {
        let channelKey = try ChannelKey.generate()
        XCTAssertEqual(try ChannelKey.fromFileText(text: channelKey.toFileText()).toFileText(), channelKey.toFileText())
        XCTAssertNotEqual(try ChannelKey.generate().toFileText(), channelKey.toFileText())
        let signingKey = try SigningKey.generate()
        let again = try SigningKey.fromFileText(text: signingKey.toFileText())
        XCTAssertEqual(again.publicKey().toBytes(), signingKey.publicKey().toBytes())
        XCTAssertEqual(signingKey.publicKey().fingerprint().count, 16)
    }
}
