// Tests of the binding's `error` module (bindings-uniffi/src/error.rs): the kinds table and
// every case of tests/conformance/vectors/errors.json, each run through the Kotlin API.
package dev.sixcast

import com.google.gson.JsonElement
import com.google.gson.JsonObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test

class ErrorTest {
    private val vectors = Vectors.load("errors.json")

    @Test
    fun thereIsExactlyOneExceptionClassPerKind() {
        val cases = SixcastException::class.java.declaredClasses
            .filter { SixcastException::class.java.isAssignableFrom(it) }
            .map { it.simpleName }
        assertEquals(Vectors.exceptionNames.values.sorted(), cases.sorted())
    }

    @Test
    fun everyKindArrivesAsItsOwnClassWithItsMessage() {
        for ((kind, className) in Vectors.exceptionNames) {
            val error = assertThrowsKind(kind, "raiseErrorKind($kind)") { raiseErrorKind(kind) }
            assertEquals(className, error::class.simpleName)
            assertTrue(error.message!!.contains(kind), error.message)
        }
        assertThrowsKind("InvalidConfig", "an unknown kind") { raiseErrorKind("NoSuchKind") }
    }

    @Test
    fun everyCaseFailsWithItsKindOrSucceeds() {
        val cases = vectors.getAsJsonArray("cases").map { it.asJsonObject }
        assertTrue(cases.isNotEmpty())
        for (case in cases) {
            val label = case.toString()
            when (val kind = case.stringOrNull("error")) {
                null -> run(case)
                else -> assertThrowsKind(kind, label) { run(case) }
            }
        }
    }

    /** Performs a case's `op` through the public API (errors.json's `_comment` lists the ops). */
    private fun run(case: JsonObject) {
        when (val op = case["op"].asString) {
            "group_address" -> groupAddressBytes(
                case.nameBytes(), case["profile"].asString, case["scope"].asString, case.stringOrNull("rp"),
            )
            "parse_profile" -> validateConfig(Config(profile = case["profile"].asString, rp = case.stringOrNull("rp")))
            "parse_scope" -> validateConfig(Config(scope = case["scope"].asString))
            "config" -> validateConfig(configWith(case.getAsJsonObject("set")))
            // The configuration is refused before a socket exists: nothing touches the network.
            "open_context" -> Context(configWith(case.getAsJsonObject("set"))).use { it.shutdown() }
            "decode" -> decodeDatagram(case["hex"].asString.hexToBytes())
            "pack" -> packMessages(
                "0000000000000001", 0u, case["max_datagram"].asInt.toUInt(),
                case.getAsJsonArray("messages_hex").map { it.asString.hexToBytes() },
            )
            else -> fail("errors.json has an op this test does not know: $op")
        }
    }

    /** The default configuration with errors.json's snake_case fields changed. */
    private fun configWith(set: JsonObject): Config = set.entrySet().fold(Config()) { config, (field, value) ->
        config.with(field, value)
    }

    private fun Config.with(field: String, value: JsonElement): Config = when (field) {
        "profile" -> copy(profile = value.asString)
        "rp" -> copy(rp = value.takeUnless { it.isJsonNull }?.asString)
        "scope" -> copy(scope = value.asString)
        "port" -> copy(port = value.takeUnless { it.isJsonNull }?.asInt?.toUShort())
        "interfaces" -> copy(interfaces = value.asJsonArray.map { it.asString })
        "hop_limit" -> copy(hopLimit = value.asInt.toUByte())
        "loopback" -> copy(loopback = value.asBoolean)
        "max_datagram_size" -> copy(maxDatagramSize = value.asLong.toULong())
        "max_message_size" -> copy(maxMessageSize = value.asLong.toULong())
        "linger_ms" -> copy(lingerMs = value.asLong.toULong())
        "queue_capacity" -> copy(queueCapacity = value.asLong.toULong())
        "recv_buffer" -> copy(recvBuffer = value.asLong.toULong())
        "reassembly_timeout_ms" -> copy(reassemblyTimeoutMs = value.asLong.toULong())
        "reassembly_memory" -> copy(reassemblyMemory = value.asLong.toULong())
        else -> fail("errors.json sets a field this test does not know: $field")
    }
}
