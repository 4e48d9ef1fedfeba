// Tests of the binding's `addr` module (bindings-uniffi/src/addr.rs) against every case of
// tests/conformance/vectors/addresses.json.
package dev.sixcast

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class AddrTest {
    private val vectors = Vectors.load("addresses.json")

    @Test
    fun everyNameMapsToItsGroupAndRelayedGroup() {
        val cases = vectors.getAsJsonArray("cases").map { it.asJsonObject }
        assertTrue(cases.size >= 100, "addresses.json has only ${cases.size} cases")
        for (case in cases) {
            val profile = case["profile"].asString
            val scope = case["scope"].asString
            val rp = case.stringOrNull("rp")
            val label = "$profile/$scope/${case.stringOrNull("name_utf8") ?: case["name_hex"] ?: "repeat"}"
            val group = groupAddressBytes(case.nameBytes(), profile, scope, rp)
            assertEquals(ipv6Bytes(case["address"].asString), ipv6Bytes(group), label)
            case.stringOrNull("name_utf8")?.let { text ->
                assertEquals(group, groupAddress(text, profile, scope, rp), "$label as text")
            }
            val relayed = case.stringOrNull("relayed_address")
            if (relayed == null) {
                assertThrowsKind("Unsupported", label) { relayedAddress(group, profile, rp) }
            } else {
                assertEquals(ipv6Bytes(relayed), ipv6Bytes(relayedAddress(group, profile, rp)), label)
            }
        }
    }

    @Test
    fun everyInvalidInputFailsWithItsKind() {
        for (element in vectors.getAsJsonArray("invalid")) {
            val case = element.asJsonObject
            assertThrowsKind(case["error"].asString, case["why"].asString) {
                groupAddressBytes(
                    case.nameBytes(),
                    case["profile"].asString,
                    case["scope"].asString,
                    case.stringOrNull("rp"),
                )
            }
        }
    }

    @Test
    fun defaultsAreTheSixcastProfileAtGlobalScope() {
        val expected = groupAddress("webservers", "sixcast", "global", null)
        assertEquals(expected, groupAddress("webservers"))
        assertEquals("ff1e:c0:1acf:916c:691a:a851:5b62:1339", expected)
        assertEquals(relayedAddress(expected, "sixcast", null), relayedAddress(expected))
    }

    @Test
    fun textThatIsNoAddressIsAnInvalidAddress() {
        assertThrowsKind("InvalidAddress", "relayedAddress of a name") { relayedAddress("webservers") }
    }
}
