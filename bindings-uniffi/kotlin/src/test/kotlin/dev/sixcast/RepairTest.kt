// Tests of the binding's decodeRepair (bindings-uniffi/src/wire.rs), the codec of reliable
// channels' datagrams, against every case of tests/conformance/vectors/repair.json.
package dev.sixcast

import com.google.gson.JsonElement
import com.google.gson.JsonObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class RepairTest {
    private val vectors = Vectors.load("repair.json")
    private val decodeCases = vectors.getAsJsonArray("decode").map { it.asJsonObject }

    @Test
    fun theVectorsHaveEveryTypeAndSomeInvalidCases() {
        val types = decodeCases.filter { it.has("decoded") }.map { it.getAsJsonObject("decoded")["type"].asString }
        assertEquals(setOf("sequenced", "parity", "nack", "status"), types.toSet())
        assertTrue(decodeCases.any { it.has("error") })
    }

    @Test
    fun validDatagramsDecodeToTheirFields() {
        val valid = decodeCases.filter { it.has("decoded") }
        assertTrue(valid.isNotEmpty())
        for (case in valid) {
            val decoded = decodeRepair(case["datagram"].asString.hexToBytes())
            assertEquals(expected(case.getAsJsonObject("decoded")), decoded.describe(), case["name"].asString)
        }
    }

    @Test
    fun invalidDatagramsAreMalformedWithTheirReason() {
        val invalid = decodeCases.filter { it.has("error") }
        assertTrue(invalid.isNotEmpty())
        for (case in invalid) {
            val name = case["name"].asString
            val error = assertThrowsKind(case["error"].asString, name) {
                decodeRepair(case["datagram"].asString.hexToBytes())
            }
            val reason = case["reason"].asString
            assertTrue(error.message!!.contains("($reason)"), "$name: ${error.message}")
        }
    }

    @Test
    fun aSendersParityDecodesAsItsBlock() {
        val cases = vectors.getAsJsonArray("parity").map { it.asJsonObject }
        assertTrue(cases.isNotEmpty())
        for (case in cases) {
            val name = case["name"].asString
            // A symbol is as long as the longest packet plus its 2-byte length, rounded up to even.
            val longest = case.getAsJsonArray("packets").maxOf { it.asString.length / 2 }
            val symbolLen = (longest + 2 + 1) / 2 * 2
            val datagrams = case.getAsJsonArray("parity").map { it.asString.hexToBytes() }
            assertTrue(datagrams.isNotEmpty(), name)
            datagrams.forEachIndexed { index, datagram ->
                val parity = decodeRepair(datagram)
                assertTrue(parity is Repair.Parity, "$name parity $index: $parity")
                parity as Repair.Parity
                assertEquals(case["sender"].asString, parity.sender, "$name parity $index sender")
                assertEquals(0uL, parity.blockStart, "$name parity $index block_start")
                assertEquals(case["block_len"].asInt.toUShort(), parity.blockLen, "$name parity $index block_len")
                assertEquals(index.toUShort(), parity.index, "$name parity $index index")
                assertEquals(symbolLen, parity.symbol.size, "$name parity $index symbol length")
            }
        }
    }

    @Test
    fun datagramsOfTheOtherLayerAreMalformedHere() {
        val message = packMessages("0000000000000001", 0u, 1232u, listOf("x".toByteArray())).single()
        val error = assertThrowsKind("Malformed", "a batch of messages") { decodeRepair(message) }
        assertTrue(error.message!!.contains("(unknown_type)"), error.message)
    }

    /** A decoded datagram as the plain values repair.json's `decoded` objects hold. */
    private fun Repair.describe(): Map<String, Any> = when (this) {
        is Repair.Sequenced -> mapOf(
            "type" to "sequenced",
            "sender" to sender,
            "packet" to packet.toLong(),
            "inner" to inner.toHex(),
        )
        is Repair.Parity -> mapOf(
            "type" to "parity",
            "sender" to sender,
            "block_start" to blockStart.toLong(),
            "block_len" to blockLen.toLong(),
            "index" to index.toLong(),
            "symbol" to symbol.toHex(),
        )
        is Repair.Nack -> mapOf(
            "type" to "nack",
            "from" to from,
            "target" to target,
            "heard" to heard.toLong(),
            "ranges" to ranges.map { listOf(it.first.toLong(), it.count.toLong()) },
        )
        is Repair.Status -> mapOf(
            "type" to "status",
            "from" to from,
            "target" to target,
            "group" to group,
            "position" to position.toLong(),
        )
    }

    /** The `decoded` object as plain values: numbers as Long, ranges as lists of Long. */
    private fun expected(decoded: JsonObject): Map<String, Any> = decoded.entrySet().associate { (key, value) ->
        key to when (key) {
            "ranges" -> value.asJsonArray.map { range -> range.asJsonArray.map(JsonElement::getAsLong) }
            else -> if (value.asJsonPrimitive.isNumber) value.asLong else value.asString
        }
    }
}
