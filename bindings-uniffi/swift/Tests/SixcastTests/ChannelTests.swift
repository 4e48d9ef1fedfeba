// Tests of the binding's `channel` module (bindings-uniffi/src/channel.rs) on this machine:
// contexts of this process (and a plain UDP socket, for a made-up sender) on the loopback
// interface lo0 (macOS carries multicast there), so nothing is sent on the machine's real network.
import Darwin
import Foundation
import Sixcast
import XCTest

final class ChannelTests: XCTestCase {
    private let config = Config(scope: "link", interfaces: ["lo0"], hopLimit: 1)

    func testTheMessagesStreamYieldsUntilTheContextCloses() async throws {
        let sender = try Context(config: config)
        let receiver = try Context(config: config)
        defer { sender.close() }
        let name = "swift-\(UUID().uuidString)"
        let inbox = try receiver.channel(name: name)
        try inbox.join()
        let outbox = try sender.channel(name: name)
        for text in ["one", "two"] {
            try outbox.send(data: Data(text.utf8))
        }
        try outbox.flush()
        var received: [Data] = []
        for try await message in inbox.messages() {
            received.append(message.payload)
            if received.count == 2 {
                receiver.close()  // the stream finishes at the next receive
            }
        }
        XCTAssertEqual(received, [Data("one".utf8), Data("two".utf8)])
    }

    func testAMessageSentLocallyArrivesWithItsMetadata() async throws {
        let sender = try Context(config: config)
        let receiver = try Context(config: config)
        defer {
            sender.close()
            receiver.close()
        }
        let name = "swift-\(UUID().uuidString)"
        let inbox = try receiver.channel(name: name)
        try inbox.join()
        let outbox = try sender.channel(name: name)
        try outbox.send(data: Data("hello from swift".utf8))
        try outbox.send(data: Data())
        try outbox.flush()

        let first = try await inbox.recvAsync(timeoutMs: 5000)
        let second = try inbox.recv(timeoutMs: 5000)
        XCTAssertEqual(first.payload, Data("hello from swift".utf8))
        XCTAssertEqual(second.payload, Data())
        XCTAssertEqual([first.seq, second.seq], [0, 1])
        for message in [first, second] {
            XCTAssertEqual(message.sender, sender.nodeId())
            XCTAssertEqual(message.group, try groupAddress(name: name, scope: "link"))
            XCTAssertEqual(message.sourcePort, sender.port())
            XCTAssertFalse(message.relayed)
            XCTAssertEqual(message.path, "native")
        }
        XCTAssertEqual(inbox.stats().messagesReceived, 2)
    }

    func testTimeoutTooLargeAndClosed() throws {
        let context = try Context(config: Config(scope: "link", interfaces: ["lo0"], hopLimit: 1, maxMessageSize: 1000))
        let channel = try context.channel(name: "swift-\(UUID().uuidString)")
        try channel.join()
        assertThrowsKind("Timeout", "recv(100)") { _ = try channel.recv(timeoutMs: 100) }
        XCTAssertNil(try channel.tryRecv())
        assertThrowsKind("MessageTooLarge", "1001 bytes") { try channel.send(data: Data(count: 1001)) }
        context.close()
        XCTAssertTrue(context.isClosed())
        assertThrowsKind("Closed", "send") { try channel.send(data: Data([1])) }
        assertThrowsKind("Closed", "trySend") { try channel.trySend(data: Data([1])) }
        assertThrowsKind("Closed", "channel") { _ = try context.channel(name: "another") }
    }

    func testTrySendAndSendTimeoutRefuseWhatTheSendRateWouldDelay() throws {
        let receiver = try Context(config: config)
        // One message every 100 ms; the pacer's 10 ms burst lets the first go at once.
        let paced = try Context(
            config: Config(scope: "link", interfaces: ["lo0"], hopLimit: 1, sendRateMessages: 10))
        defer {
            paced.close()
            receiver.close()
        }
        let name = "swift-\(UUID().uuidString)"
        let inbox = try receiver.channel(name: name)
        try inbox.join()
        let outbox = try paced.channel(name: name)
        try outbox.trySend(data: Data("first".utf8))
        assertThrowsKind("Timeout", "trySend") { try outbox.trySend(data: Data("refused".utf8)) }
        assertThrowsKind("Timeout", "sendTimeout(50)") {
            try outbox.sendTimeout(data: Data("also refused".utf8), timeoutMs: 50)
        }
        let started = Date()
        try outbox.sendTimeout(data: Data("second".utf8), timeoutMs: 500)
        let waited = Date().timeIntervalSince(started)
        XCTAssertTrue(waited >= 0.08 && waited < 0.4, "sendTimeout(500) returned after \(waited) s")
        try outbox.flush()
        XCTAssertEqual(outbox.stats().messagesSent, 2)
        XCTAssertEqual(try inbox.recv(timeoutMs: 5000).payload, Data("first".utf8))
        XCTAssertEqual(try inbox.recv(timeoutMs: 5000).payload, Data("second".utf8))
        // The refused messages were never queued, so they never left.
        assertThrowsKind("Timeout", "a third message") { _ = try inbox.recv(timeoutMs: 300) }
    }

    func testSenderLossesCountTheSkippedMessagesOfEachSender() throws {
        let context = try Context(config: config)
        defer { context.close() }
        let channel = try context.channel(name: "swift-\(UUID().uuidString)")
        try channel.join()
        XCTAssertEqual(channel.senderLosses(), [])
        // Messages 0, 1 and 4 of one made-up sender and 0, 1 and 2 of another, from a plain UDP
        // socket of this process: multicast loopback on lo0 carries them to the channel.
        let sent: [(sender: String, seq: UInt64)] = [
            ("0000000000000042", 0), ("0000000000000042", 1), ("0000000000000042", 4),
            ("0000000000000007", 0), ("0000000000000007", 1), ("0000000000000007", 2),
        ]
        var datagrams: [Data] = []
        for (sender, seq) in sent {
            datagrams += try packMessages(
                sender: sender, firstSeq: seq, maxDatagram: 1232, messages: [Data("numbered".utf8)])
        }
        try sendToGroup(datagrams, group: channel.group(), port: context.port())
        var received: Set<String> = []
        for _ in sent {
            let message = try channel.recv(timeoutMs: 5000)
            received.insert("\(message.sender):\(message.seq)")
        }
        XCTAssertEqual(received, Set(sent.map { "\($0.sender):\($0.seq)" }))
        XCTAssertEqual(channel.stats().lost, 2)
        // By node id: the sender without a gap first.
        XCTAssertEqual(
            channel.senderLosses(),
            [
                SenderLoss(sender: "0000000000000007", highestSeq: 2, lost: 0),
                SenderLoss(sender: "0000000000000042", highestSeq: 4, lost: 2),
            ])
    }

    /// Sends `datagrams` to the link-scope `group` on lo0 from a plain UDP socket with multicast
    /// loopback on, as a sender outside sixcast would.
    private func sendToGroup(_ datagrams: [Data], group: String, port: UInt16) throws {
        let fd = socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDP)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { Darwin.close(fd) }
        var index: UInt32 = if_nametoindex("lo0")
        var loop: UInt32 = 1
        let optionSize = socklen_t(MemoryLayout<UInt32>.size)
        guard setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, optionSize) == 0,
            setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, optionSize) == 0
        else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in6()
        address.sin6_len = UInt8(MemoryLayout<sockaddr_in6>.size)
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        address.sin6_scope_id = index
        guard inet_pton(AF_INET6, group, &address.sin6_addr) == 1 else {
            throw POSIXError(.EINVAL)
        }
        for datagram in datagrams {
            let written = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                        sendto(
                            fd, bytes.baseAddress, bytes.count, 0, socketAddress,
                            socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            }
            guard written == datagram.count else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
    }

    func testASealedChannelReachesOnlyTheReceiverWithItsKey() throws {
        let sender = try Context(config: config)
        let holder = try Context(config: config)
        let outsider = try Context(config: config)
        defer {
            sender.close()
            holder.close()
            outsider.close()
        }
        let name = "swift-\(UUID().uuidString)"
        let key = try ChannelKey.generate()
        let holderInbox = try holder.channel(name: name)
        try holderInbox.setKey(key: try ChannelKey.fromFileText(text: key.toFileText()))
        try holderInbox.join()
        let outsiderInbox = try outsider.channel(name: name)
        try outsiderInbox.join()
        let outbox = try sender.channel(name: name)
        try outbox.setKey(key: key)
        try outbox.send(data: Data("secret".utf8))
        try outbox.flush()

        XCTAssertEqual(try holderInbox.recv(timeoutMs: 5000).payload, Data("secret".utf8))
        XCTAssertEqual(Set(holderInbox.stats().drops.keys), Set(dropReasons()))
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && outsiderInbox.stats().drops["no_key"] == 0 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertGreaterThanOrEqual(outsiderInbox.stats().drops["no_key"] ?? 0, 1)
        XCTAssertNil(try outsiderInbox.tryRecv())
        XCTAssertEqual(outsiderInbox.stats().messagesReceived, 0)
    }

    func testATokenOfATrustedIssuerAdmitsItsSigner() throws {
        let sender = try Context(config: config)
        let admitter = try Context(config: config)
        let refuser = try Context(config: config)
        defer {
            sender.close()
            admitter.close()
            refuser.close()
        }
        let name = "swift-\(UUID().uuidString)"
        let issuer = try SigningKey.generate()
        let signer = try SigningKey.generate()
        let admitterInbox = try admitter.channel(name: name)
        try admitterInbox.trustIssuer(issuer: issuer.publicKey())
        try admitterInbox.join()
        let refuserInbox = try refuser.channel(name: name)
        try refuserInbox.trust(key: try SigningKey.generate().publicKey())
        try refuserInbox.join()
        let outbox = try sender.channel(name: name)
        let token = try Token.issue(
            issuer: issuer, subject: signer.publicKey(), group: outbox.group(),
            notAfter: UInt64(Date().timeIntervalSince1970) + 3600)
        assertThrowsKind("InvalidConfig", "a token before its signing key") { try outbox.present(token: token) }
        try outbox.signWith(key: signer)
        try outbox.present(token: token)
        try outbox.send(data: Data("vouched for".utf8))
        try outbox.flush()

        XCTAssertEqual(try admitterInbox.recv(timeoutMs: 5000).payload, Data("vouched for".utf8))
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && refuserInbox.stats().drops["untrusted_signer"] == 0 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertGreaterThanOrEqual(refuserInbox.stats().drops["untrusted_signer"] ?? 0, 1)
        XCTAssertNil(try refuserInbox.tryRecv())
    }
}
