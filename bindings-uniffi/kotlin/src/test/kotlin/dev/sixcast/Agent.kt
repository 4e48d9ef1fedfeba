// The Kotlin conformance agent: the command line of tests/conformance/agents/README.md, using
// only the binding's public API. Run it with bindings-uniffi/kotlin/agent.
package dev.sixcast

import com.google.gson.JsonNull
import com.google.gson.JsonObject
import com.google.gson.JsonPrimitive
import kotlin.system.exitProcess

/** Exit code of `recv` when the timeout passes before `count` messages arrived. */
const val EXIT_TIMED_OUT = 3

private const val USAGE = "usage: agent send <channel> <label> | agent recv <channel> <count> <timeout-seconds>"

/** The agents' large message: 1 MiB with byte i = i % 251. */
val LARGE_MESSAGE: ByteArray = ByteArray(1 shl 20) { (it % 251).toByte() }

/** The three messages `send` sends, in order. */
fun agentMessages(label: String): List<ByteArray> = listOf("hello from $label".toByteArray(), ByteArray(0), LARGE_MESSAGE)

fun main(args: Array<String>) {
    val code = when (args.firstOrNull()) {
        "send" if args.size == 3 -> send(args[1], args[2])
        "recv" if args.size == 4 -> receive(args[1], args[2].toInt(), args[3].toDouble())
        else -> {
            System.err.println(USAGE)
            2
        }
    }
    exitProcess(code)
}

private fun send(channelName: String, label: String): Int {
    Context(Config()).use { context ->
        val channel = context.channel(channelName)
        agentMessages(label).forEach(channel::send)
        channel.flush()
        context.shutdown()
    }
    return 0
}

private fun receive(channelName: String, count: Int, timeoutSeconds: Double): Int {
    Context(Config()).use { context ->
        val channel = context.channel(channelName)
        channel.join()
        println("READY")
        System.out.flush()
        val deadline = System.nanoTime() + (timeoutSeconds * 1e9).toLong()
        repeat(count) {
            val remainingMs = (deadline - System.nanoTime()) / 1_000_000
            if (remainingMs <= 0) return EXIT_TIMED_OUT
            val message = try {
                channel.recv(remainingMs.toULong())
            } catch (_: SixcastException.Timeout) {
                return EXIT_TIMED_OUT
            }
            println(describe(message))
            System.out.flush()
        }
        context.shutdown()
    }
    return 0
}

/** One output line of `recv`, as the agents README specifies it. */
fun describe(message: Message): String {
    val payload = message.payload
    val line = JsonObject()
    line.addProperty("size", payload.size)
    line.add("text", if (payload.size <= 64) JsonPrimitive(payload.decodeToString()) else JsonNull.INSTANCE)
    line.addProperty("pattern_ok", payload.contentEquals(LARGE_MESSAGE))
    line.addProperty("seq", message.seq.toLong())
    line.addProperty("sender", message.sender)
    return line.toString()
}
