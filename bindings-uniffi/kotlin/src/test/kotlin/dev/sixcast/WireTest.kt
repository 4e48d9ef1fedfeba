// Tests of the binding's `wire` module (bindings-uniffi/src/wire.rs) against every case of
// tests/conformance/vectors/wire.json.
package dev.sixcast

import com.google.gson.JsonObject
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class WireTest {
    private val vectors = Vectors.load("wire.json")
    private val constants = vectors.getAsJsonObject("constants")

    @Test
    fun validDatagramsDecodeToTheirFields() {
        val valid = vectors.getAsJsonArray("decode").map { it.asJsonObject }.filter { it.has("decoded") }
        assertTrue(valid.isNotEmpty())
        for (case in valid) {
            val decoded = decodeDatagram(case["datagram"].asString.hexToBytes())
            assertEquals(expectedDatagram(case.getAsJsonObject("decoded")), decoded.describe(), case["name"].asString)
        }
    }

    @Test
    fun invalidDatagramsAreMalformedWithTheirReason() {
        val invalid = vectors.getAsJsonArray("decode").map { it.asJsonObject }.filter { it.has("error") }
        assertTrue(invalid.isNotEmpty())
        for (case in invalid) {
            val name = case["name"].asString
            val error = assertThrowsKind(case["error"].asString, name) {
                decodeDatagram(case["datagram"].asString.hexToBytes())
            }
            val reason = case["reason"].asString
            assertTrue(error.message!!.contains("($reason)"), "$name: ${error.message}")
        }
    }

    @Test
    fun messagesPackIntoTheExpectedDatagramsAndBack() {
        for (element in vectors.getAsJsonArray("encode")) {
            val case = element.asJsonObject
            val name = case["name"].asString
            val messages = case.getAsJsonArray("messages").map { it.asString.hexToBytes() }
            val firstSeq = case["first_seq"].asLong.toULong()
            val datagrams = packMessages(case["sender"].asString, firstSeq, case["max_datagram"].asInt.toUInt(), messages)
            val expected = case.getAsJsonArray("datagrams").map { it.asString }
            assertEquals(expected, datagrams.map { it.toHex() }, name)
            val reassembled = reassemble(datagrams.map(::decodeDatagram))
            assertEquals(messages.indices.map { firstSeq + it.toULong() }, reassembled.keys.toList(), name)
            messages.forEachIndexed { i, message ->
                assertArrayEquals(message, reassembled[firstSeq + i.toULong()], "$name message $i")
            }
        }
    }

    @Test
    fun datagramSizesOutsideTheProtocolLimitsAreInvalidConfig() {
        val sender = "0000000000000001"
        val min = constants["min_datagram_size"].asInt.toUInt()
        val max = constants["max_datagram_size"].asInt.toUInt()
        packMessages(sender, 0u, min, listOf(byteArrayOf(1)))
        packMessages(sender, 0u, max, listOf(byteArrayOf(1)))
        assertThrowsKind("InvalidConfig", "below the minimum") { packMessages(sender, 0u, min - 1u, listOf()) }
        assertThrowsKind("InvalidConfig", "above the maximum") { packMessages(sender, 0u, max + 1u, listOf()) }
        assertThrowsKind("InvalidConfig", "a short node id") { packMessages("01", 0u, min, listOf()) }
    }

    @Test
    fun theDefaultConfigurationUsesTheProtocolDefaults() {
        val config = defaultConfig()
        assertEquals(constants["default_datagram_size"].asLong.toULong(), config.maxDatagramSize)
        assertEquals(constants["default_max_message_size"].asLong.toULong(), config.maxMessageSize)
    }

    /** A datagram as the plain values wire.json's `decoded` objects hold. */
    private fun Datagram.describe(): Map<String, Any> = when (this) {
        is Datagram.Messages -> mapOf(
            "type" to "messages",
            "sender" to sender,
            "first_seq" to firstSeq.toLong(),
            "messages" to messages.map { mapOf("seq" to it.seq.toLong(), "payload" to it.payload.toHex()) },
        )
        is Datagram.Fragment -> mapOf(
            "type" to "fragment",
            "sender" to sender,
            "seq" to seq.toLong(),
            "total_len" to totalLen.toLong(),
            "offset" to offset.toLong(),
            "index" to index.toLong(),
            "count" to count.toLong(),
            "chunk" to chunk.toHex(),
        )
    }

    private fun expectedDatagram(decoded: JsonObject): Map<String, Any> = decoded.entrySet().associate { (key, value) ->
        key to when {
            key == "messages" -> value.asJsonArray.map {
                val message = it.asJsonObject
                mapOf("seq" to message["seq"].asLong, "payload" to message["payload"].asString)
            }
            value.asJsonPrimitive.isNumber -> value.asLong
            else -> value.asString
        }
    }

    /** Whole messages by sequence number, from batches and from complete sets of fragments. */
    private fun reassemble(datagrams: List<Datagram>): Map<ULong, ByteArray> {
        val messages = sortedMapOf<ULong, ByteArray>()
        for (datagram in datagrams) {
            when (datagram) {
                is Datagram.Messages -> datagram.messages.forEach { messages[it.seq] = it.payload }
                is Datagram.Fragment -> {
                    val whole = messages.getOrPut(datagram.seq) { ByteArray(datagram.totalLen.toInt()) }
                    datagram.chunk.copyInto(whole, datagram.offset.toInt())
                }
            }
        }
        return messages
    }
}
