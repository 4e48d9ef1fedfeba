// Tests of the binding's `addr` module (bindings-uniffi/src/addr.rs) against every case of
// tests/conformance/vectors/addresses.json.
import Foundation
import Sixcast
import XCTest

final class AddrTests: XCTestCase {
    func testEveryNameMapsToItsGroupAndRelayedGroup() throws {
        let cases = try XCTUnwrap(Vectors.load("addresses.json")["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 100)
        for vector in cases {
            let profile = vector["profile"] as! String
            let scope = vector["scope"] as! String
            let rp = vector["rp"] as? String
            let label = "\(profile)/\(scope)/\(vector["name_hex"] ?? "repeat")"
            let group = try groupAddressBytes(name: nameBytes(vector), profile: profile, scope: scope, rp: rp)
            XCTAssertEqual(ipv6Bytes(group), ipv6Bytes(vector["address"] as! String), label)
            if let text = vector["name_utf8"] as? String {
                XCTAssertEqual(try groupAddress(name: text, profile: profile, scope: scope, rp: rp), group, label)
            }
            if let relayed = vector["relayed_address"] as? String {
                let derived = try relayedAddress(group: group, profile: profile, rp: rp)
                XCTAssertEqual(ipv6Bytes(derived), ipv6Bytes(relayed), label)
            } else {
                assertThrowsKind("Unsupported", label) { _ = try relayedAddress(group: group, profile: profile, rp: rp) }
            }
        }
    }

    func testEveryInvalidInputFailsWithItsKind() throws {
        let invalid = try XCTUnwrap(Vectors.load("addresses.json")["invalid"] as? [[String: Any]])
        for vector in invalid {
            assertThrowsKind(vector["error"] as! String, vector["why"] as! String) {
                _ = try groupAddressBytes(
                    name: nameBytes(vector), profile: vector["profile"] as! String,
                    scope: vector["scope"] as! String, rp: vector["rp"] as? String)
            }
        }
    }

    func testDefaultsAreTheSixcastProfileAtGlobalScope() throws {
        XCTAssertEqual(try groupAddress(name: "webservers"), "ff1e:c0:1acf:916c:691a:a851:5b62:1339")
    }
}
