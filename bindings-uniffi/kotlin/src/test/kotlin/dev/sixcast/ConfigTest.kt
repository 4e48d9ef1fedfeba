// Tests of the binding's `config` module (bindings-uniffi/src/config.rs).
package dev.sixcast

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class ConfigTest {
    @Test
    fun theRecordDefaultsAreTheCoreDefaults() {
        assertEquals(defaultConfig(), Config())
        validateConfig(Config())
    }

    @Test
    fun errorsNameTheBadField() {
        val error = assertThrowsKind("InvalidConfig", "hop limit 0") { validateConfig(Config(hopLimit = 0u)) }
        assertTrue(error.message!!.contains("hop_limit"), error.message)
    }

    @Test
    fun anEmbeddedRpProfileTakesItsRp() {
        validateConfig(Config(profile = "embedded-rp", rp = "2001:db8:5c::5/64"))
        assertThrowsKind("InvalidConfig", "embedded-rp without an RP") { validateConfig(Config(profile = "embedded-rp")) }
    }

    @Test
    fun stratum0IsCheckedText() {
        assertNull(Config().stratum0)
        assertEquals(2000uL, Config().probeTimeoutMs)
        validateConfig(Config(stratum0 = "[2001:db8::1]:6447", probeTimeoutMs = 500u))
        for (bad in listOf("2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:65536", "192.0.2.1:6447", "", "[ff1e::1]:6447")) {
            val error = assertThrowsKind("InvalidConfig", "stratum0 $bad") { validateConfig(Config(stratum0 = bad)) }
            assertTrue(error.message!!.contains("stratum0"), error.message)
        }
        assertThrowsKind("InvalidConfig", "stratum0 in Context") { Context(Config(stratum0 = "nowhere")) }
        assertThrowsKind("InvalidConfig", "probe timeout 0") { validateConfig(Config(probeTimeoutMs = 0u)) }
    }

    @Test
    fun domainAndDnsServerAreCheckedText() {
        assertNull(Config().domain)
        assertNull(Config().dnsServer)
        validateConfig(Config(domain = "example.org", dnsServer = "[2001:db8::53]:5353"))
        validateConfig(Config(domain = "example.org", dnsServer = "2001:db8::53"))
        for (bad in listOf("", "a..b")) {
            val error = assertThrowsKind("InvalidConfig", "domain $bad") { validateConfig(Config(domain = bad)) }
            assertTrue(error.message!!.contains("domain"), error.message)
        }
        for (bad in listOf("resolver.example", "[::]:53")) {
            val error = assertThrowsKind("InvalidConfig", "dnsServer $bad") {
                validateConfig(Config(domain = "example.org", dnsServer = bad))
            }
            assertTrue(error.message!!.contains("dns_server"), error.message)
        }
        assertThrowsKind("InvalidConfig", "dnsServer without a domain") { validateConfig(Config(dnsServer = "2001:db8::53")) }
    }

    @Test
    fun probeIntervalRoundTripsAndMustBeAtLeastTheTimeout() {
        assertEquals(30000uL, Config().probeIntervalMs)
        val config = Config(probeTimeoutMs = 1500u, probeIntervalMs = 45250u)
        assertEquals(45250uL, config.probeIntervalMs)
        validateConfig(config)
        validateConfig(Config(probeTimeoutMs = 1500u, probeIntervalMs = 1500u))
        val error = assertThrowsKind("InvalidConfig", "probe interval below the timeout") {
            validateConfig(Config(probeTimeoutMs = 3000u, probeIntervalMs = 2000u))
        }
        assertTrue(error.message!!.contains("probe_interval"), error.message)
    }

    @Test
    fun reliableRoundTripsAndNeedsTheSixcastHeader() {
        assertFalse(Config().reliable)
        val config = Config(reliable = true)
        assertTrue(config.reliable)
        validateConfig(config)
        validateConfig(Config(profile = "ssm", reliable = true))
        validateConfig(Config(profile = "librecast"))
        // Only the core knows that librecast datagrams carry no header: a dropped field would pass.
        val error = assertThrowsKind("InvalidConfig", "reliable librecast") {
            validateConfig(Config(profile = "librecast", reliable = true))
        }
        assertTrue(error.message!!.contains("reliable"), error.message)
        assertThrowsKind("InvalidConfig", "reliable librecast in Context") { Context(Config(profile = "librecast", reliable = true)) }
    }

    @Test
    fun statsCountRepairsFromZero() {
        // Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
        Context(Config(reliable = true)).use { context ->
            for (stats in listOf(context.channel("quiet").stats(), context.stats())) {
                val repairCounters = listOf(
                    stats.nacksSent,
                    stats.nacksReceived,
                    stats.repairsSent,
                    stats.repairBytesSent,
                    stats.repairsReceived,
                    stats.packetsRecovered,
                    stats.packetsLost,
                )
                assertEquals(List(7) { 0uL }, repairCounters, stats.toString())
            }
            context.shutdown()
        }
    }

    @Test
    fun reachabilityIsNullWithoutStratum0() {
        // Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
        Context(Config()).use { context ->
            assertNull(context.reachability())
            context.shutdown()
        }
    }

    @Test
    fun relayKeysArePinnedPublicKeys() {
        assertTrue(Config().relayKeys.isEmpty())
        val key = SigningKey.fromSeed(ByteArray(32) { 7 }).publicKey().toBytes()
        validateConfig(Config(relayKeys = listOf(key)))
        val weak = ByteArray(32).also { it[0] = 1 }
        val error = assertThrowsKind("InvalidConfig", "a weak relay key") {
            validateConfig(Config(relayKeys = listOf(key, weak)))
        }
        assertTrue(error.message!!.contains("relay_keys[1]"), error.message)
        assertThrowsKind("InvalidConfig", "a short relay key") { validateConfig(Config(relayKeys = listOf(ByteArray(31)))) }
        assertThrowsKind("InvalidConfig", "a weak relay key in Context") { Context(Config(relayKeys = listOf(weak))) }
    }

    @Test
    fun relayIssuersAreTrustedPublicKeys() {
        assertTrue(Config().relayIssuers.isEmpty())
        val issuer = SigningKey.fromSeed(ByteArray(32) { 9 }).publicKey().toBytes()
        validateConfig(Config(relayIssuers = listOf(issuer)))
        val weak = ByteArray(32).also { it[0] = 1 }
        val error = assertThrowsKind("InvalidConfig", "a weak issuer key") { validateConfig(Config(relayIssuers = listOf(weak))) }
        assertTrue(error.message!!.contains("relay_issuers[0]"), error.message)
    }
}
