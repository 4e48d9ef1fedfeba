// Tests of the binding's `config` module (bindings-uniffi/src/config.rs).
package dev.sixcast

import org.junit.jupiter.api.Assertions.assertEquals
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
}
