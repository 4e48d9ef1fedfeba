// Tests of the binding's control-message functions (decodeControl, controlMac in
// bindings-uniffi/src/wire.rs) against every case of tests/conformance/vectors/control.json,
// and of the reachability configuration.
import Foundation
import Sixcast
import XCTest

final class ControlTests: XCTestCase {
    func testEveryControlCaseDecodesOrIsMalformedWithItsReason() throws {
        let vectors = try Vectors.load("control.json")
        let encode = try XCTUnwrap(vectors["encode"] as? [[String: Any]])
        let decode = try XCTUnwrap(vectors["decode"] as? [[String: Any]])
        XCTAssertFalse(encode.isEmpty)
        for vector in encode + decode {
            let name = vector["name"] as! String
            if let kind = vector["error"] as? String {
                let error = assertThrowsKind(kind, name) { _ = try decodeControl(datagram: received(vector)) }
                let reason = vector["reason"] as! String
                XCTAssertTrue(String(describing: error).contains("(\(reason))"), "\(name): \(String(describing: error))")
                continue
            }
            let expected = (vector["message"] ?? vector["decoded"]) as! [String: Any]
            let message = try decodeControl(datagram: received(vector))
            XCTAssertEqual(describe(message), canonical(expected), name)
        }
    }

    func testEveryMacMatches() throws {
        let cases = try XCTUnwrap(Vectors.load("control.json")["mac"] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty)
        for vector in cases {
            let mac = try controlMac(
                secret: Data(hex: vector["secret"] as! String), address: vector["ip"] as! String,
                port: UInt16(vector["port"] as! Int), nonce: vector["nonce"] as! String)
            XCTAssertEqual(mac, Data(hex: vector["mac"] as! String), vector["name"] as! String)
        }
        assertThrowsKind("InvalidConfig", "a short secret") {
            _ = try controlMac(secret: Data(count: 31), address: "2001:db8::7", port: 1, nonce: "0102030405060708")
        }
        assertThrowsKind("InvalidConfig", "a short nonce") {
            _ = try controlMac(secret: Data(count: 32), address: "2001:db8::7", port: 1, nonce: "0102")
        }
    }

    func testStratum0IsCheckedAndReachabilityIsNilWithoutIt() throws {
        XCTAssertNil(Config().stratum0)
        XCTAssertEqual(Config().probeTimeoutMs, 2000)
        try validateConfig(config: Config(stratum0: "[2001:db8::1]:6447", probeTimeoutMs: 500))
        XCTAssertEqual(Config().probeIntervalMs, 30000)
        let config = Config(probeTimeoutMs: 1500, probeIntervalMs: 45250)
        XCTAssertEqual(config.probeIntervalMs, 45250)
        try validateConfig(config: config)
        assertThrowsKind("InvalidConfig", "probe interval below the timeout") {
            try validateConfig(config: Config(probeTimeoutMs: 3000, probeIntervalMs: 2000))
        }
        for bad in ["2001:db8::1", "[2001:db8::1]", "192.0.2.1:6447", "", "[ff1e::1]:6447"] {
            assertThrowsKind("InvalidConfig", "stratum0 \(bad)") { try validateConfig(config: Config(stratum0: bad)) }
        }
        // Binds a UDP port on this host but sends nothing.
        let context = try Context(config: Config())
        XCTAssertNil(context.reachability())
        context.close()
    }

    /// The received bytes of a case: `datagram`, then any `datagram_repeat` bytes.
    private func received(_ vector: [String: Any]) -> Data {
        var data = Data(hex: vector["datagram"] as! String)
        if let repeated = vector["datagram_repeat"] as? [String: Any] {
            let byte = Data(hex: repeated["byte_hex"] as! String)[0]
            data.append(Data(repeating: byte, count: repeated["count"] as! Int))
        }
        return data
    }

    private func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    /// "[address]:port" as "bytes|port", addresses compared as their 16 bytes.
    private func socketKey(_ text: String) -> String {
        let close = text.lastIndex(of: "]")!
        let address = String(text[text.index(after: text.startIndex)..<close])
        let port = text[text.index(close, offsetBy: 2)...]
        return "\(ipv6Bytes(address))|\(port)"
    }

    private func describe(_ message: ControlMessage) -> [String: String] {
        var fields: [String: String] = ["type": message.name]
        fields["nonce"] = message.nonce
        fields["beacon_nonce"] = message.beaconNonce
        fields["heard_beacon"] = message.heardBeacon.map { "\($0)" }
        fields["limit"] = message.limit.map { "\($0)" }
        fields["repeater"] = message.repeater.map { "\($0)" }
        fields["observed"] = message.observed.map(socketKey)
        fields["node"] = message.node.map(socketKey)
        fields["relay"] = message.relay.map(socketKey)
        fields["old"] = message.old.map(socketKey)
        fields["old_nonce"] = message.oldNonce
        fields["old_mac"] = message.oldMac.map(hex)
        fields["cookie"] = message.cookie.map(hex)
        fields["mac"] = message.mac.map(hex)
        fields["load"] = message.load.map { "\($0)" }
        fields["refresh_secs"] = message.refreshSecs.map { "\($0)" }
        fields["gateway"] = message.gateway
        fields["hold_ms"] = message.holdMs.map { "\($0)" }
        fields["groups"] = message.groups.map { $0.map { "\(ipv6Bytes($0))" }.joined(separator: ",") }
        fields["group"] = message.group.map { "\(ipv6Bytes($0))" }
        fields["datagram"] = message.datagram.map(hex)
        fields["relay_key"] = message.relayKey
        fields["voucher"] = message.voucher.map(hex)
        fields["signature"] = message.signature.map(hex)
        return fields
    }

    private func canonical(_ expected: [String: Any]) -> [String: String] {
        var fields: [String: String] = [:]
        for (key, value) in expected {
            switch value {
            case let address as [String: Any]:
                fields[key] = "\(ipv6Bytes(address["ip"] as! String))|\(address["port"] as! Int)"
            case let groups as [String]:
                fields[key] = groups.map { "\(ipv6Bytes($0))" }.joined(separator: ",")
            case let flag as Bool where CFGetTypeID(value as CFTypeRef) == CFBooleanGetTypeID():
                fields[key] = "\(flag)"
            case let number as Int:
                fields[key] = "\(number)"
            case let text as String where key == "group":
                fields[key] = "\(ipv6Bytes(text))"
            default:
                fields[key] = "\(value)"
            }
        }
        return fields
    }
}
