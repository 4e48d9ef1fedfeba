// Tests of the binding's control-message functions (decodeControl, controlMac in
// bindings-uniffi/src/wire.rs) against every case of tests/conformance/vectors/control.json.
package dev.sixcast

import com.google.gson.JsonElement
import com.google.gson.JsonObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class ControlTest {
    private val vectors = Vectors.load("control.json")
    private val socketFields = setOf("observed", "node", "relay", "old")
    private val bytesFields = setOf("cookie", "mac", "datagram")

    @Test
    fun encodedMessagesDecodeToTheirFields() {
        val cases = vectors.getAsJsonArray("encode").map { it.asJsonObject }
        assertTrue(cases.isNotEmpty())
        for (case in cases) {
            val decoded = decodeControl(case["datagram"].asString.hexToBytes())
            assertEquals(expected(case.getAsJsonObject("message")), decoded.describe(), case["name"].asString)
        }
    }

    @Test
    fun validReceivedMessagesDecodeToTheirFields() {
        val cases = vectors.getAsJsonArray("decode").map { it.asJsonObject }.filter { it.has("decoded") }
        assertTrue(cases.isNotEmpty())
        for (case in cases) {
            val decoded = decodeControl(case.received())
            assertEquals(expected(case.getAsJsonObject("decoded")), decoded.describe(), case["name"].asString)
        }
    }

    @Test
    fun invalidMessagesAreMalformedWithTheirReason() {
        val cases = vectors.getAsJsonArray("decode").map { it.asJsonObject }.filter { it.has("error") }
        assertTrue(cases.isNotEmpty())
        for (case in cases) {
            val name = case["name"].asString
            val error = assertThrowsKind(case["error"].asString, name) { decodeControl(case.received()) }
            val reason = case["reason"].asString
            assertTrue(error.message!!.contains("($reason)"), "$name: ${error.message}")
        }
    }

    @Test
    fun macsMatchTheVectors() {
        val cases = vectors.getAsJsonArray("mac").map { it.asJsonObject }
        assertTrue(cases.isNotEmpty())
        for (case in cases) {
            val mac = controlMac(
                case["secret"].asString.hexToBytes(),
                case["ip"].asString,
                case["port"].asInt.toUShort(),
                case["nonce"].asString,
            )
            assertEquals(case["mac"].asString, mac.toHex(), case["name"].asString)
        }
    }

    @Test
    fun controlMacRejectsBadArguments() {
        val secret = ByteArray(32)
        assertThrowsKind("InvalidConfig", "short secret") { controlMac(ByteArray(31), "2001:db8::7", 1u, "0102030405060708") }
        assertThrowsKind("InvalidAddress", "bad address") { controlMac(secret, "2001:db8::zz", 1u, "0102030405060708") }
        for (nonce in listOf("0102", "+102030405060708", "010203040506070g")) {
            assertThrowsKind("InvalidConfig", "nonce $nonce") { controlMac(secret, "2001:db8::7", 1u, nonce) }
        }
    }

    /** The received bytes of a `decode` case: `datagram`, then any `datagram_repeat` bytes. */
    private fun JsonObject.received(): ByteArray {
        val head = this["datagram"].asString.hexToBytes()
        val repeat = getAsJsonObject("datagram_repeat") ?: return head
        val byte = repeat["byte_hex"].asString.hexToBytes().single()
        return head + ByteArray(repeat["count"].asInt) { byte }
    }

    /** A decoded message as plain values, addresses as 16 bytes, in the vectors' field names. */
    private fun ControlMessage.describe(): Map<String, Any> {
        val fields = mapOf(
            "type" to name,
            "nonce" to nonce,
            "beacon_nonce" to beaconNonce,
            "heard_beacon" to heardBeacon,
            "limit" to limit,
            "repeater" to repeater,
            "observed" to observed?.let(::socketAddress),
            "node" to node?.let(::socketAddress),
            "relay" to relay?.let(::socketAddress),
            "old" to old?.let(::socketAddress),
            "old_nonce" to oldNonce,
            "old_mac" to oldMac?.toHex(),
            "cookie" to cookie?.toHex(),
            "mac" to mac?.toHex(),
            "load" to load?.toLong(),
            "refresh_secs" to refreshSecs?.toLong(),
            "gateway" to gateway,
            "hold_ms" to holdMs?.toLong(),
            "groups" to groups?.map(::ipv6Bytes),
            "group" to group?.let(::ipv6Bytes),
            "datagram" to datagram?.toHex(),
            "relay_key" to relayKey,
            "voucher" to voucher?.toHex(),
            "signature" to signature?.toHex(),
        )
        @Suppress("UNCHECKED_CAST")
        return fields.filterValues { it != null } as Map<String, Any>
    }

    /** "[address]:port" as (address bytes, port). */
    private fun socketAddress(text: String): Pair<List<Byte>, Long> {
        val match = Regex("""^\[(.+)]:(\d+)$""").matchEntire(text) ?: error("$text is not [address]:port")
        return ipv6Bytes(match.groupValues[1]) to match.groupValues[2].toLong()
    }

    private fun expected(message: JsonObject): Map<String, Any> = message.entrySet().associate { (key, value) ->
        key to expectedValue(key, value)
    }

    private fun expectedValue(key: String, value: JsonElement): Any = when {
        key in socketFields -> {
            val address = value.asJsonObject
            ipv6Bytes(address["ip"].asString) to address["port"].asLong
        }
        key in bytesFields -> value.asString
        key == "groups" -> value.asJsonArray.map { ipv6Bytes(it.asString) }
        key == "group" -> ipv6Bytes(value.asString)
        value.asJsonPrimitive.isBoolean -> value.asBoolean
        value.asJsonPrimitive.isNumber -> value.asLong
        else -> value.asString
    }
}
