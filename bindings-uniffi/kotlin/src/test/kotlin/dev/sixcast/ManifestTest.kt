// Tests of the binding's decodeManifest (bindings-uniffi/src/wire.rs), the codec of MANIFEST
// datagrams, against every decode case of tests/conformance/vectors/manifest.json.
package dev.sixcast

import com.google.gson.JsonObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class ManifestTest {
    private val vectors = Vectors.load("manifest.json")
    private val decodeCases = vectors.getAsJsonArray("decode").map { it.asJsonObject }

    @Test
    fun theVectorsHaveValidAndInvalidCases() {
        assertTrue(decodeCases.any { !it.has("reason") })
        assertTrue(decodeCases.any { it.has("reason") })
    }

    @Test
    fun validManifestsDecodeToTheirFields() {
        val valid = decodeCases.filter { !it.has("reason") }
        assertTrue(valid.isNotEmpty())
        for (case in valid) {
            val name = case["name"].asString
            val decoded = decodeManifest(case["manifest"].asString.hexToBytes())
            assertEquals(expected(case), decoded.describe(), name)
            assertTrue(decoded.digests.all { it.size == 16 }, "$name: digests of 16 bytes")
        }
    }

    @Test
    fun invalidManifestsAreMalformedWithTheirReason() {
        val invalid = decodeCases.filter { it.has("reason") }
        assertTrue(invalid.isNotEmpty())
        for (case in invalid) {
            val name = case["name"].asString
            val error = assertThrowsKind("Malformed", name) {
                decodeManifest(case["manifest"].asString.hexToBytes())
            }
            val reason = case["reason"].asString
            assertTrue(error.message!!.contains("($reason)"), "$name: ${error.message}")
        }
    }

    @Test
    fun datagramsOfTheOtherLayerAreMalformedHere() {
        val message = packMessages("0000000000000001", 0u, 1232u, listOf("x".toByteArray())).single()
        val error = assertThrowsKind("Malformed", "a batch of messages") { decodeManifest(message) }
        assertTrue(error.message!!.contains("(unknown_type)"), error.message)
    }

    /** A decoded manifest as the plain values of manifest.json's valid cases. */
    private fun Manifest.describe(): Map<String, Any> = mapOf(
        "sender" to sender,
        "number" to number.toLong(),
        "digests" to digests.map { it.toHex() },
    )

    /** The fields of a valid case as plain values: the number as Long, the digests as hex. */
    private fun expected(case: JsonObject): Map<String, Any> = mapOf(
        "sender" to case["sender"].asString,
        "number" to case["number"].asLong,
        "digests" to case.getAsJsonArray("digests").map { it.asString },
    )
}
