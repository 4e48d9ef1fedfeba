// Access to the shared conformance vectors (tests/conformance/vectors) and the helpers every
// vector test needs: hex, channel names as bytes, addresses compared as 16 bytes, error cases.
import Foundation
import Sixcast
import XCTest

enum Vectors {
    /// SIXCAST_VECTORS, or the repository's vectors folder found from this file's path.
    static let folder: URL = {
        if let path = ProcessInfo.processInfo.environment["SIXCAST_VECTORS"] {
            return URL(fileURLWithPath: path)
        }
        var repo = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { repo.deleteLastPathComponent() }  // Tests/SixcastTests/<file> in swift/ in bindings-uniffi/
        return repo.appendingPathComponent("tests/conformance/vectors")
    }()

    static func load(_ file: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent(file))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The SixcastError case of each ErrorKind name: the `uniffi` column of errors.json.
    static let caseNames: [String: String] = {
        let kinds = (try? load("errors.json")["kinds"]) as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: kinds.map { ($0["name"] as! String, $0["uniffi"] as! String) })
    }()
}

extension Data {
    init(hex: String) {
        var bytes = [UInt8]()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self.init(bytes)
    }
}

/// A channel name of a vector: `name_hex`, `name_utf8` or `name_repeat` {byte_hex, count}.
func nameBytes(_ vector: [String: Any]) -> Data {
    if let hex = vector["name_hex"] as? String { return Data(hex: hex) }
    if let text = vector["name_utf8"] as? String { return Data(text.utf8) }
    let repeated = vector["name_repeat"] as! [String: Any]
    let byte = Data(hex: repeated["byte_hex"] as! String)
    return Data(repeating: byte[0], count: repeated["count"] as! Int)
}

/// The 16 bytes of an IPv6 address in text form.
func ipv6Bytes(_ text: String) -> [UInt8] {
    var address = in6_addr()
    precondition(inet_pton(AF_INET6, text, &address) == 1, "not an IPv6 address: \(text)")
    return withUnsafeBytes(of: &address) { Array($0) }
}

/// The case of a SixcastError, such as "InvalidName".
func caseName(_ error: SixcastError) -> String {
    Mirror(reflecting: error).children.first?.label ?? String(describing: error)
}

/// Asserts that `body` throws the SixcastError case errors.json names for `kind`.
@discardableResult
func assertThrowsKind(
    _ kind: String, _ context: String, file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Void
) -> SixcastError? {
    guard let expected = Vectors.caseNames[kind] else {
        XCTFail("errors.json has no kind \(kind)", file: file, line: line)
        return nil
    }
    do {
        try body()
        XCTFail("\(context): expected SixcastError.\(expected), nothing was thrown", file: file, line: line)
    } catch let error as SixcastError {
        XCTAssertEqual(caseName(error), expected, "\(context): \(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("\(context): \(error) is not a SixcastError", file: file, line: line)
    }
    return nil
}
