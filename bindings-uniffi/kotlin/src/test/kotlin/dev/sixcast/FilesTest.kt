// Tests of the binding's `files` module (bindings-uniffi/src/files.rs). Those tagged `world`
// open contexts, and run only inside a namespace world (bindings-uniffi/run-tests starts them
// in host h1 of `sixcast-netlab run lan:3`), never on the machine's own interfaces: two contexts
// of this host talk through multicast loopback.
package dev.sixcast

import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Tag
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInfo
import java.nio.file.Files
import java.nio.file.Path
import java.security.MessageDigest
import kotlin.concurrent.thread
import kotlin.io.path.listDirectoryEntries
import kotlin.io.path.name
import kotlin.io.path.readBytes
import kotlin.io.path.writeBytes
import kotlin.random.Random

class FilesTest {
    /** Runs [body] with a fresh temporary folder, removed afterwards. */
    private fun withFolder(body: (Path) -> Unit) {
        val folder = Files.createTempDirectory("sixcast-files-")
        try {
            body(folder)
        } finally {
            folder.toFile().deleteRecursively()
        }
    }

    private fun channelName(test: TestInfo) = "kotlin-${test.testMethod.get().name}-${System.nanoTime()}"

    @Test
    fun aReceiverNeedsAFolderThatExists() = withFolder { folder ->
        assertThrowsKind("InvalidConfig", "a missing folder") { FileReceiver(folder.resolve("missing").toString()) }
        val file = folder.resolve("a-file")
        file.writeBytes(byteArrayOf(1))
        assertThrowsKind("InvalidConfig", "a file, not a folder") { FileReceiver(file.toString(), 10uL, 1u) }
        FileReceiver(folder.toString()).use { receiver ->
            assertEquals(FileStats(0uL, 0uL, 0uL, 0uL, 0uL, 0uL, 0uL), receiver.stats())
        }
    }

    @Test
    @Tag("world")
    fun sendFileRefusesBadNamesAndPassesBeforeSending(test: TestInfo) = withFolder { folder ->
        World.require()
        val file = folder.resolve("payload.bin")
        file.writeBytes(ByteArray(100) { it.toByte() })
        Context(Config(reliable = true)).use { context ->
            val channel = context.channel(channelName(test))
            for (bad in listOf("../x", "a/b", ".hidden", "")) {
                val error = assertThrowsKind("InvalidConfig", "name ${bad.ifEmpty { "(empty)" }}") {
                    channel.sendFile(file.toString(), name = bad)
                }
                assertTrue(error.message!!.contains("plain name"), error.message)
            }
            assertThrowsKind("InvalidConfig", "0 passes") { channel.sendFile(file.toString(), passes = 0u) }
            assertThrowsKind("Io", "a missing file") { channel.sendFile(folder.resolve("missing.bin").toString()) }
            assertEquals(0uL, channel.stats().messagesSent, "a refused file sends nothing")
            context.shutdown()
        }
    }

    @Test
    @Tag("world")
    fun aReceiverWithNothingToReceiveTimesOut(test: TestInfo) = withFolder { folder ->
        World.require()
        Context(Config()).use { context ->
            val channel = context.channel(channelName(test))
            channel.join()
            FileReceiver(folder.toString()).use { receiver ->
                val started = System.nanoTime()
                assertThrowsKind("Timeout", "recv(200)") { receiver.recv(channel, 200uL) }
                assertTrue(System.nanoTime() - started >= 200_000_000, "returned before the timeout")
            }
            context.shutdown()
            FileReceiver(folder.toString()).use { receiver ->
                assertThrowsKind("Closed", "recv after shutdown") { receiver.recv(channel, 100uL) }
            }
        }
    }

    @Test
    @Tag("world")
    fun aFileArrivesWholeAtAJoinedReceiver(test: TestInfo) = withFolder { folder ->
        World.require()
        val name = channelName(test)
        val data = Random.nextBytes(200 * 1024)
        val digest = MessageDigest.getInstance("SHA-256").digest(data).toHex()
        val source = folder.resolve("source").also { Files.createDirectory(it) }.resolve("payload.bin")
        source.writeBytes(data)
        val inbox = folder.resolve("inbox").also { Files.createDirectory(it) }
        Context(Config()).use { receiverContext ->
            // A FileReceiver does not join: the application does.
            val incoming = receiverContext.channel(name)
            incoming.join()
            FileReceiver(inbox.toString()).use { receiver ->
                Context(Config(reliable = true)).use { senderContext ->
                    val outgoing = senderContext.channel(name)
                    var sent: Result<SentFile>? = null
                    val sending = thread {
                        sent = runCatching {
                            // Not a file: the receiver counts it and passes over it.
                            outgoing.send("not a file".toByteArray())
                            outgoing.sendFile(source.toString(), name = "received.bin")
                        }
                    }
                    val outcome = receiver.recv(incoming, 30_000uL)
                    sending.join(30_000)
                    val file = sent?.getOrThrow() ?: fail("sendFile did not return")
                    assertEquals("received.bin", file.name)
                    assertEquals(data.size.toULong(), file.size)
                    assertEquals(digest, file.sha256)
                    assertTrue(file.chunk in 64u..1232u, "chunk ${file.chunk}")

                    val complete = outcome as? FileOutcome.Complete ?: fail("not complete: $outcome")
                    assertEquals("received.bin", complete.name)
                    assertEquals(inbox.resolve("received.bin").toString(), complete.path)
                    assertEquals(data.size.toULong(), complete.size)
                    assertEquals(digest, complete.sha256)
                    assertEquals(senderContext.nodeId(), complete.sender)
                    assertEquals(0uL, complete.resumed)
                    val received = Path.of(complete.path).readBytes()
                    assertArrayEquals(data, received)
                    assertEquals(digest, MessageDigest.getInstance("SHA-256").digest(received).toHex())
                    // The partial file and its state are gone: only the named file is left.
                    assertEquals(listOf("received.bin"), inbox.listDirectoryEntries().map { it.name })

                    val chunks = (data.size.toULong() + file.chunk - 1u) / file.chunk
                    val stats = receiver.stats()
                    assertEquals(chunks, stats.chunks, stats.toString())
                    assertEquals(0uL, stats.duplicateChunks, stats.toString())
                    assertEquals(1uL, stats.otherMessages, stats.toString())
                    assertTrue(stats.frames >= chunks + 1u, stats.toString())
                    assertEquals(0uL, stats.malformed, stats.toString())
                    assertEquals(0uL, stats.refused, stats.toString())
                    // Closing a reliable context waits for the receivers' last repairs.
                    senderContext.shutdown()
                }
            }
            receiverContext.shutdown()
        }
    }
}
