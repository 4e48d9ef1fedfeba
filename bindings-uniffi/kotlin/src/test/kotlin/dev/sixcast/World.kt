// The namespace world the network tests run in: `sixcast-netlab run lan:3 -- ...` describes it
// in SIXCAST_WORLD, and bindings-uniffi/run-tests starts the JVM inside one of its hosts.
package dev.sixcast

import com.google.gson.JsonParser
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Assumptions.assumeTrue
import java.io.BufferedReader
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/** One host of the world: its network namespace and its single interface. */
data class Host(val name: String, val netns: String, val ifname: String, val ifindex: UInt, val addr: String)

/** The world, and which of its hosts this JVM runs in. */
class World(val self: Host, val peers: List<Host>) {
    companion object {
        /**
         * The world this JVM runs in. Without SIXCAST_WORLD the calling tests are skipped, or
         * fail when CI is set, so that a CI run can never pass without the network tests.
         */
        fun require(): World {
            val json = System.getenv("SIXCAST_WORLD")
            if (json == null) {
                val reason = "SIXCAST_WORLD is not set: run these tests with bindings-uniffi/run-tests"
                if (System.getenv("CI") != null) fail<Unit>("$reason (CI is set, so this is a failure)")
                assumeTrue(false, reason)
            }
            val hosts = JsonParser.parseString(json).asJsonObject.getAsJsonArray("hosts").map {
                val host = it.asJsonObject
                Host(
                    name = host["name"].asString,
                    netns = host["netns"].asString,
                    ifname = host["ifname"].asString,
                    ifindex = host["ifindex"].asInt.toUInt(),
                    addr = host["addr"].asString,
                )
            }
            val ownNamespace = inode(Path.of("/proc/self/ns/net"))
            val self = hosts.find { inode(Path.of("/run/netns", it.netns)) == ownNamespace }
                ?: fail("this JVM runs in none of the world's hosts; start it with ip netns exec")
            return World(self, hosts - self)
        }

        private fun inode(path: Path): Any = Files.getAttribute(path, "unix:ino")
    }
}

/** A conformance agent (bindings-uniffi/kotlin/agent) running in another host. */
class Peer(host: Host, vararg args: String) : AutoCloseable {
    private val process: Process = ProcessBuilder(listOf("ip", "netns", "exec", host.netns, agentPath()) + args)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start()
    private val output: BufferedReader = process.inputStream.bufferedReader()

    /** The next line the agent prints; fails after [timeoutSeconds]. */
    fun nextLine(timeoutSeconds: Long = 30): String =
        CompletableFuture.supplyAsync { output.readLine() }.get(timeoutSeconds, TimeUnit.SECONDS)
            ?: fail("the agent ended without printing a line (exit code ${exitCode()})")

    fun exitCode(timeoutSeconds: Long = 30): Int {
        if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) fail<Unit>("the agent did not exit")
        return process.exitValue()
    }

    override fun close() {
        process.destroyForcibly()
    }

    private companion object {
        fun agentPath(): String = System.getProperty("sixcast.agent") ?: error("system property sixcast.agent is not set")
    }
}
