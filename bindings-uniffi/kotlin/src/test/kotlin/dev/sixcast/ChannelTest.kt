// Tests of the binding's `channel` module (bindings-uniffi/src/channel.rs) that need a network.
// They run only inside a namespace world (bindings-uniffi/run-tests starts them in host h1 of
// `sixcast-netlab run lan:3`), never on the machine's own interfaces.
package dev.sixcast

import com.google.gson.JsonParser
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Tag
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInfo
import java.io.File
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.NetworkInterface
import java.net.StandardProtocolFamily
import java.net.StandardSocketOptions
import java.nio.ByteBuffer
import java.nio.channels.DatagramChannel
import kotlin.concurrent.thread

@Tag("world")
class ChannelTest {
    companion object {
        // Computed once; while it throws (no world), each test reports the skip or failure.
        private val world: World by lazy(World::require)
    }

    @BeforeEach
    fun enterWorld() {
        check(world.peers.isNotEmpty()) { "the world needs at least two hosts" }
    }

    /** Runs [body] with an open context, and closes the context afterwards. */
    private fun withContext(config: Config = Config(), body: (Context) -> Unit) = Context(config).use { context ->
        body(context)
        context.shutdown()
    }

    /** A channel name of its own per test, so that no test hears another's traffic. */
    private fun channelName(test: TestInfo) = "kotlin-${test.testMethod.get().name}-${System.nanoTime()}"

    @Test
    fun aPeersMessagesArriveWithTheirMetadata(test: TestInfo) = withContext { context ->
        val name = channelName(test)
        val channel = context.channel(name)
        channel.join()
        val peer = world.peers.first()
        Peer(peer, "send", name, peer.name).use { assertEquals(0, it.exitCode()) }

        val messages = List(3) { channel.recv(10_000u) }
        agentMessages(peer.name).zip(messages).forEach { (sent, received) ->
            assertArrayEquals(sent, received.payload)
        }
        assertEquals(listOf(0uL, 1uL, 2uL), messages.map { it.seq })
        for (message in messages) {
            assertEquals(peer.addr, message.source)
            assertEquals(context.port(), message.sourcePort)
            assertEquals(groupAddress(name), message.group)
            assertEquals(world.self.ifindex, message.interfaceIndex)
            assertEquals(world.self.ifname, message.interfaceName)
            assertTrue(message.sender.matches(Regex("[0-9a-f]{16}")), message.sender)
            assertNotEquals(context.nodeId(), message.sender)
            assertFalse(message.relayed)
            assertEquals("native", message.path)
        }
        assertEquals(1, messages.map { it.sender }.toSet().size)
        assertNull(channel.tryRecv())
        val stats = channel.stats()
        assertEquals(3uL, stats.messagesReceived)
        assertEquals(LARGE_MESSAGE.size.toULong() + peer.name.length.toULong() + 11uL, stats.bytesReceived)
        assertEquals(stats.messagesReceived, context.stats().messagesReceived)
    }

    @Test
    fun ourMessagesReachEveryOtherHost(test: TestInfo) = withContext { context ->
        val name = channelName(test)
        val receivers = world.peers.map { Peer(it, "recv", name, "3", "30") }
        try {
            receivers.forEach { assertEquals("READY", it.nextLine()) }
            val channel = context.channel(name)
            agentMessages(world.self.name).forEach(channel::send)
            channel.flush()
            for (receiver in receivers) {
                val lines = List(3) { JsonParser.parseString(receiver.nextLine()).asJsonObject }
                assertEquals(listOf(world.self.name.length + 11, 0, LARGE_MESSAGE.size), lines.map { it["size"].asInt })
                assertEquals("hello from ${world.self.name}", lines[0]["text"].asString)
                assertEquals("", lines[1]["text"].asString)
                assertTrue(lines[2]["text"].isJsonNull)
                assertEquals(listOf(false, false, true), lines.map { it["pattern_ok"].asBoolean })
                assertEquals(listOf(0L, 1L, 2L), lines.map { it["seq"].asLong })
                lines.forEach { assertEquals(context.nodeId(), it["sender"].asString) }
                assertEquals(0, receiver.exitCode())
            }
            assertEquals(3uL, channel.stats().messagesSent)
        } finally {
            receivers.forEach(Peer::close)
        }
    }

    @Test
    fun theLibrarysWarningsReachAKotlinLogger() {
        val kept = java.util.concurrent.CopyOnWriteArrayList<Triple<LogLevel, String, String>>()
        val logger = object : Logger {
            override fun log(level: LogLevel, target: String, message: String) {
                kept.add(Triple(level, target, message))
            }
        }
        assertTrue(setLogger(logger, LogLevel.WARN), "another tracing subscriber was installed")
        try {
            val stratum0 = "[${world.peers.first().addr}]:6447"
            withContext(Config(stratum0 = stratum0, probeTimeoutMs = 300u)) { context ->
                val deadline = System.nanoTime() + 10_000_000_000L
                while (System.nanoTime() < deadline && context.reachability()?.lastError == null) {
                    Thread.sleep(50)
                }
                assertTrue(context.reachability()?.lastError != null, "the core was reached without a Stratum 0")
            }
        } finally {
            clearLogger()
        }
        val warnings = kept.filter { (level, _, message) ->
            level == LogLevel.WARN && "reaching the multicast core" in message
        }
        assertTrue(warnings.isNotEmpty(), kept.toString())
        assertTrue(warnings.all { (_, target, _) -> target.startsWith("sixcast") }, warnings.toString())
        assertTrue(kept.none { (level, _, _) -> level > LogLevel.WARN }, "more detail than asked: $kept")
    }

    @Test
    fun reachabilityReportsAStratum0ThatDoesNotAnswer() {
        val stratum0 = "[${world.peers.first().addr}]:6447"
        withContext(Config(stratum0 = stratum0, probeTimeoutMs = 300u)) { context ->
            var reachability = context.reachability()
            assertTrue(reachability != null, "reachability() is null with a stratum0")
            val deadline = System.nanoTime() + 10_000_000_000L
            while (System.nanoTime() < deadline && reachability!!.probe == null && reachability.lastError == null) {
                Thread.sleep(50)
                reachability = context.reachability()
            }
            val settled = reachability!!
            assertTrue(settled.probe != null || settled.lastError != null, settled.toString())
            settled.probe?.let { probe ->
                assertEquals(stratum0, probe.stratum0)
                assertFalse(probe.answered)
                assertNull(probe.rttMs)
                assertFalse(probe.nativeUp)
            }
            assertNull(settled.relay)
            assertNull(settled.gateway)
            assertEquals(emptyList<String>(), settled.serving)
            assertEquals(stratum0, settled.stratum0, "the configured Stratum 0 was tried")
            assertEquals(0uL, settled.rejectedRelays, "no relay answered, so none was refused")
            assertEquals(0uL, settled.heldDropped, "nothing was sent, so no copy was dropped")
            // The failed attempt arrives as an event: the core is unreachable.
            var event = context.nextEvent(10_000u)
            while (event.kind != "path_changed") event = context.nextEvent(10_000u)
            assertEquals("unreachable", event.path)
            assertNull(event.via)
        }
        withContext { quiet ->
            assertNull(quiet.tryEvent())
            assertThrowsKind("Timeout", "nextEvent(50)") { quiet.nextEvent(50u) }
        }
    }

    @Test
    fun theContextDescribesItself() = withContext { context ->
        assertTrue(context.nodeId().matches(Regex("[0-9a-f]{16}")), context.nodeId())
        assertEquals(listOf(world.self.ifname), context.interfaces())
        assertFalse(context.isClosed())
        val channel = context.channel("webservers")
        assertEquals("webservers", channel.name())
        assertEquals(groupAddress("webservers"), channel.group())
        assertEquals(relayedAddress(channel.group()), channel.relayedGroup())
    }

    @Test
    fun everyProfileBindsItsPortAndNamesItsGroups() {
        val cases = Vectors.load("addresses.json").getAsJsonArray("cases").map { it.asJsonObject }
        val globalTextCases = cases.filter { it["scope"].asString == "global" && it.stringOrNull("name_utf8") != null }
        for ((profileAndRp, group) in globalTextCases.groupBy { it["profile"].asString to it.stringOrNull("rp") }) {
            val (profile, rp) = profileAndRp
            withContext(Config(profile = profile, rp = rp)) { context ->
                assertEquals(group.first()["port"].asInt.toUShort(), context.port(), profile)
                for (case in group) {
                    val channel = context.channel(case["name_utf8"].asString)
                    assertEquals(ipv6Bytes(case["address"].asString), ipv6Bytes(channel.group()), "$profile $case")
                    assertEquals(case.stringOrNull("relayed_address")?.let(::ipv6Bytes), channel.relayedGroup()?.let(::ipv6Bytes))
                }
            }
        }
    }

    @Test
    fun membershipsFollowTheCoreRules(test: TestInfo) = withContext(Config(profile = "ssm")) { context ->
        val channel = context.channel(channelName(test))
        val peer = world.peers.first()
        assertThrowsKind("InvalidAddress", "text that is no address") { channel.joinSource("h2") }
        assertThrowsKind("InvalidAddress", "a multicast source") { channel.joinSource(channel.group()) }
        channel.joinSource(peer.addr)
        assertThrowsKind("InvalidConfig", "any source after a source") { channel.join() }
        channel.leave()
        channel.join()
        channel.leave()
    }

    @Test
    fun aWaitWithoutMessagesTimesOut(test: TestInfo) = withContext { context ->
        val channel = context.channel(channelName(test))
        channel.join()
        val started = System.nanoTime()
        assertThrowsKind("Timeout", "recv(200)") { channel.recv(200u) }
        assertTrue(System.nanoTime() - started >= 200_000_000, "returned before the timeout")
        assertNull(channel.tryRecv())
    }

    @Test
    fun aMessageOverTheMaximumIsRefused(test: TestInfo) = withContext(Config(maxMessageSize = 1000u)) { context ->
        val channel = context.channel(channelName(test))
        channel.send(ByteArray(1000))
        assertThrowsKind("MessageTooLarge", "1001 bytes") { channel.send(ByteArray(1001)) }
        assertEquals(1uL, channel.stats().messagesSent)
    }

    @Test
    fun aReliableSenderCountsTheRepairsItSends(test: TestInfo) = withContext(Config(reliable = true)) { context ->
        val channel = context.channel(channelName(test))
        channel.send("numbered".toByteArray())
        channel.flush()
        // A reliable sender announces the end of each burst with parity of its last block.
        val deadline = System.nanoTime() + 10_000_000_000L
        while (System.nanoTime() < deadline && channel.stats().repairsSent == 0uL) Thread.sleep(20)
        val stats = channel.stats()
        assertTrue(stats.repairsSent >= 1uL, stats.toString())
        assertTrue(stats.repairBytesSent > stats.repairsSent, "every repair datagram has bytes: $stats")
        // Nobody else is on the channel: nothing was missed, asked for or rebuilt.
        assertEquals(0uL, stats.nacksReceived, stats.toString())
        assertEquals(0uL, stats.nacksSent, stats.toString())
        assertEquals(0uL, stats.repairsReceived, stats.toString())
        assertEquals(0uL, stats.packetsRecovered, stats.toString())
        assertEquals(0uL, stats.packetsLost, stats.toString())
        // The context's totals include the channel's (and any announcement sent since).
        assertTrue(context.stats().repairsSent >= stats.repairsSent)
    }

    @Test
    fun trySendAndSendTimeoutRefuseWhatTheSendRateWouldDelay(test: TestInfo) {
        val name = channelName(test)
        withContext { receiver ->
            // One message every 100 ms; the pacer's 10 ms burst lets the first go at once.
            withContext(Config(sendRateMessages = 10u)) { paced ->
                val inbox = receiver.channel(name)
                inbox.join()
                val outbox = paced.channel(name)
                outbox.trySend("first".toByteArray())
                assertThrowsKind("Timeout", "trySend") { outbox.trySend("refused".toByteArray()) }
                assertThrowsKind("Timeout", "sendTimeout(50)") { outbox.sendTimeout("also refused".toByteArray(), 50u) }
                val started = System.nanoTime()
                outbox.sendTimeout("second".toByteArray(), 500u)
                val waitedMs = (System.nanoTime() - started) / 1_000_000
                assertTrue(waitedMs in 80L until 400L, "sendTimeout(500) returned after $waitedMs ms")
                outbox.flush()
                assertEquals(2uL, outbox.stats().messagesSent)
                val received = List(2) { inbox.recv(5_000u).payload.decodeToString() }
                assertEquals(listOf("first", "second"), received)
                // The refused messages were never queued, so they never left.
                assertThrowsKind("Timeout", "a third message") { inbox.recv(300u) }
            }
        }
    }

    @Test
    fun theDefaultMaximumIsOneMebibyte(test: TestInfo) = withContext { context ->
        val channel = context.channel(channelName(test))
        assertThrowsKind("MessageTooLarge", "1 MiB + 1") { channel.send(ByteArray((1 shl 20) + 1)) }
    }

    @Test
    fun everyCallAfterShutdownFailsWithClosed(test: TestInfo) = withContext { context ->
        val channel = context.channel(channelName(test))
        channel.join()
        context.shutdown()
        context.shutdown()
        assertTrue(context.isClosed())
        assertThrowsKind("Closed", "send") { channel.send(byteArrayOf(1)) }
        assertThrowsKind("Closed", "sendTimeout") { channel.sendTimeout(byteArrayOf(1), 100u) }
        assertThrowsKind("Closed", "trySend") { channel.trySend(byteArrayOf(1)) }
        assertThrowsKind("Closed", "flush") { channel.flush() }
        assertThrowsKind("Closed", "join") { channel.join() }
        assertThrowsKind("Closed", "recv") { channel.recv(100u) }
        assertThrowsKind("Closed", "tryRecv") { channel.tryRecv() }
        assertThrowsKind("Closed", "recvAsync") { runBlocking { channel.recvAsync(100u) } }
        assertThrowsKind("Closed", "channel") { context.channel("another") }
    }

    @Test
    fun shutdownWakesABlockedReceive(test: TestInfo) = withContext { context ->
        val channel = context.channel(channelName(test))
        channel.join()
        var outcome: Throwable? = null
        val receiver = thread { outcome = runCatching { channel.recv(null) }.exceptionOrNull() }
        Thread.sleep(200)
        context.shutdown()
        receiver.join(5_000)
        assertFalse(receiver.isAlive, "recv(null) still blocks after shutdown")
        assertEquals("Closed", outcome?.let { it::class.simpleName })
    }

    @Test
    fun aSuspendingReceiveLeavesItsThreadFree(test: TestInfo) {
        val name = channelName(test)
        withContext { sender ->
            withContext { receiver ->
                val inbox = receiver.channel(name)
                inbox.join()
                // runBlocking has one thread: the send below runs only if recvAsync suspends.
                val message = runBlocking {
                    val pending = async { inbox.recvAsync(10_000u) }
                    delay(100)
                    val outbox = sender.channel(name)
                    outbox.send("from a coroutine".toByteArray())
                    outbox.flush()
                    pending.await()
                }
                assertEquals("from a coroutine", message.payload.decodeToString())
                assertEquals(sender.nodeId(), message.sender)
                assertThrowsKind("Timeout", "recvAsync(100)") { runBlocking { inbox.recvAsync(100u) } }
            }
        }
    }

    @Test
    fun aThousandPendingReceivesAddNoThreads(test: TestInfo) {
        val name = channelName(test)
        val count = 1_000
        val targets = listOf(0, 333, 500, 999, 7)
        withContext { sender ->
            withContext { receiver ->
                val channels = (0 until count).map { receiver.channel("$name-$it") }
                targets.forEach { channels[it].join() }
                // A first receive starts the runtime that polls every receive: it is not per receive.
                runBlocking { runCatching { channels[1].recvAsync(1u) } }
                val threadsBefore = threadsNotTheJvms()
                val latencies = runBlocking {
                    val pending = channels.map { channel -> async { channel.recvAsync(30_000u) } }.toMutableList()
                    delay(200)
                    val threadsWaiting = threadsNotTheJvms()
                    // At most as many: a JVM or runtime thread may end meanwhile, none may start.
                    assertTrue(
                        threadsWaiting <= threadsBefore,
                        "$count pending receives started threads: $threadsBefore before, $threadsWaiting waiting",
                    )
                    targets.map { index ->
                        val outbox = sender.channel("$name-$index")
                        val sent = System.nanoTime()
                        outbox.send("to $index".toByteArray())
                        outbox.flush()
                        val message = pending[index].await()
                        val latency = (System.nanoTime() - sent) / 1e6
                        assertEquals("to $index", message.payload.decodeToString())
                        latency
                    }.also { pending.forEach { it.cancel() } }
                }
                println("recvAsync wake-up latencies (ms): $latencies")
                assertTrue(latencies.all { it < 500 }, "latencies $latencies")
            }
        }
    }

    @Test
    fun theMessagesFlowCollectsUntilShutdown(test: TestInfo) {
        val name = channelName(test)
        withContext { sender ->
            val receiver = Context(Config())
            val inbox = receiver.channel(name)
            inbox.join()
            val outbox = sender.channel(name)
            listOf("one", "two", "three").forEach { outbox.send(it.toByteArray()) }
            outbox.flush()
            val firstTwo = runBlocking { inbox.messages().take(2).toList() }
            assertEquals(listOf("one", "two"), firstTwo.map { it.payload.decodeToString() })
            val rest = thread {
                Thread.sleep(200)
                receiver.shutdown()
            }
            // The flow hands out what is left, then completes at the shutdown.
            val last = runBlocking { inbox.messages().toList() }
            rest.join()
            assertEquals(listOf("three"), last.map { it.payload.decodeToString() })
            receiver.close()
        }
    }

    @Test
    fun aCancelledReceiveLeavesLaterMessagesAlone(test: TestInfo) {
        val name = channelName(test)
        withContext { sender ->
            withContext { receiver ->
                val inbox = receiver.channel(name)
                inbox.join()
                assertNull(runBlocking { withTimeoutOrNull(200) { inbox.recvAsync(null) } })
                // Sent at once: the abandoned wait may still watch the queue, but takes nothing.
                val outbox = sender.channel(name)
                outbox.send("after the cancel".toByteArray())
                outbox.flush()
                assertEquals("after the cancel", inbox.recv(5_000u).payload.decodeToString())
            }
        }
    }

    @Test
    fun receivesCancelledWhileMessagesArriveLoseNone(test: TestInfo) {
        val name = channelName(test)
        val count = 300
        withContext { sender ->
            withContext { receiver ->
                val inbox = receiver.channel(name)
                inbox.join()
                val outbox = sender.channel(name)
                val sending = thread {
                    repeat(count) { index ->
                        outbox.send(index.toString().toByteArray())
                        outbox.flush()
                        Thread.sleep(2)
                    }
                }
                val received = mutableListOf<Int>()
                var cancelled = 0
                // Cancels receives over and over, after 1 to 20 ms, while the messages arrive. From
                // this thread, not by wrapping recvAsync in withTimeoutOrNull: its timer thread may
                // cancel just as recvAsync returns, and kotlinx then discards the returned message.
                runBlocking {
                    var attempt = 0
                    while (sending.isAlive) {
                        val receive = launch { received += inbox.recvAsync(null).payload.decodeToString().toInt() }
                        if (withTimeoutOrNull(longArrayOf(1, 5, 20)[attempt++ % 3]) { receive.join() } == null) {
                            cancelled++
                            receive.cancelAndJoin()
                        }
                    }
                }
                sending.join()
                while (true) {
                    val message = runCatching { inbox.recv(1_000u) }.getOrNull() ?: break
                    received += message.payload.decodeToString().toInt()
                }
                assertTrue(cancelled >= 10, "only $cancelled receives were cancelled")
                assertEquals((0 until count).toList(), received.sorted(), "every message exactly once")
                assertEquals(count.toULong(), inbox.stats().messagesReceived)
                assertEquals(0uL, inbox.stats().lost)
            }
        }
    }

    @Test
    fun senderLossesCountTheSkippedMessagesOfEachSender(test: TestInfo) = withContext { context ->
        val channel = context.channel(channelName(test))
        channel.join()
        assertEquals(emptyList<SenderLoss>(), channel.senderLosses())
        // Messages 0, 1 and 4 of one made-up sender and 0, 1 and 2 of another, from a plain UDP
        // socket of this host: multicast loopback carries them to the channel.
        val sent = listOf(
            "0000000000000042" to 0uL,
            "0000000000000042" to 1uL,
            "0000000000000042" to 4uL,
            "0000000000000007" to 0uL,
            "0000000000000007" to 1uL,
            "0000000000000007" to 2uL,
        )
        DatagramChannel.open(StandardProtocolFamily.INET6).use { socket ->
            socket.setOption(StandardSocketOptions.IP_MULTICAST_IF, NetworkInterface.getByName(world.self.ifname))
            socket.setOption(StandardSocketOptions.IP_MULTICAST_LOOP, true)
            val group = InetSocketAddress(InetAddress.getByName(channel.group()), context.port().toInt())
            for ((sender, seq) in sent) {
                for (datagram in packMessages(sender, seq, 1232u, listOf("numbered".toByteArray()))) {
                    socket.send(ByteBuffer.wrap(datagram), group)
                }
            }
        }
        val received = List(sent.size) { channel.recv(5_000u) }.map { it.sender to it.seq }
        assertEquals(sent.toSet(), received.toSet())
        assertEquals(2uL, channel.stats().lost)
        // By node id: the sender without a gap first.
        assertEquals(
            listOf(SenderLoss("0000000000000007", 2uL, 0uL), SenderLoss("0000000000000042", 4uL, 2uL)),
            channel.senderLosses(),
        )
    }

    @Test
    fun aSealedChannelReachesOnlyTheReceiverWithItsKey(test: TestInfo) {
        val name = channelName(test)
        val key = ChannelKey.generate()
        // Three contexts in this host: multicast loopback carries the sender's datagrams to both.
        withContext { holderContext ->
            withContext { outsiderContext ->
                val holder = holderContext.channel(name)
                holder.setKey(ChannelKey.fromFileText(key.toFileText()))
                holder.join()
                val outsider = outsiderContext.channel(name)
                outsider.join()
                withContext { senderContext ->
                    val sender = senderContext.channel(name)
                    sender.setKey(key)
                    sender.send("secret".toByteArray())
                    sender.flush()
                }
                assertEquals("secret", holder.recv(10_000u).payload.decodeToString())
                assertEquals(dropReasons().toSet(), holder.stats().drops.keys)
                assertEquals(setOf(0uL), holder.stats().drops.values.toSet())

                val deadline = System.nanoTime() + 10_000_000_000L
                while (System.nanoTime() < deadline && outsider.stats().drops["no_key"] == 0uL) Thread.sleep(20)
                val stats = outsider.stats()
                assertTrue(stats.drops["no_key"]!! >= 1uL, stats.toString())
                assertNull(outsider.tryRecv())
                assertEquals(0uL, stats.messagesReceived)
            }
        }
    }

    @Test
    fun aTokenOfATrustedIssuerAdmitsItsSigner(test: TestInfo) {
        val name = channelName(test)
        val issuer = SigningKey.generate()
        val signer = SigningKey.generate()
        withContext { admitterContext ->
            withContext { refuserContext ->
                val admitter = admitterContext.channel(name)
                admitter.trustIssuer(issuer.publicKey())
                admitter.join()
                val refuser = refuserContext.channel(name)
                refuser.trust(SigningKey.generate().publicKey())
                refuser.join()
                withContext { senderContext ->
                    val sender = senderContext.channel(name)
                    val token = Token.issue(issuer, signer.publicKey(), sender.group(), System.currentTimeMillis().toULong() / 1000uL + 3600uL)
                    assertThrowsKind("InvalidConfig", "a token before its signing key") { sender.present(token) }
                    sender.signWith(signer)
                    sender.present(token)
                    sender.send("vouched for".toByteArray())
                    sender.flush()
                }
                assertEquals("vouched for", admitter.recv(10_000u).payload.decodeToString())
                val deadline = System.nanoTime() + 10_000_000_000L
                while (System.nanoTime() < deadline && refuser.stats().drops["untrusted_signer"] == 0uL) Thread.sleep(20)
                assertTrue(refuser.stats().drops["untrusted_signer"]!! >= 1uL, refuser.stats().toString())
                assertNull(refuser.tryRecv())
            }
        }
    }
}

/**
 * This process's threads, less those the JVM starts on demand by itself (JIT compilers and GC
 * workers, under load): one of those once made the count of a test that no receive starts a
 * thread go up by one.
 */
private fun threadsNotTheJvms(): Int =
    File("/proc/self/task").listFiles()!!.count { task ->
        val name = runCatching { File(task, "comm").readText().trim() }.getOrDefault("")
        JVM_ON_DEMAND.none { name.startsWith(it) }
    }

private val JVM_ON_DEMAND = listOf("C1 CompilerThre", "C2 CompilerThre", "GC Thread", "G1 Conc", "G1 Refine")
