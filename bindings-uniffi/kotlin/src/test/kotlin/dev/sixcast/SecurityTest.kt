// Tests of the binding's `crypto` module (bindings-uniffi/src/crypto.rs) against every case of
// tests/conformance/vectors/security.json: key files, tokens, sealing, signing and opening
// datagrams.
package dev.sixcast

import com.google.gson.JsonObject
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test

class SecurityTest {
    private val vectors = Vectors.load("security.json")

    private fun JsonObject.cases(field: String) = getAsJsonArray(field).map { it.asJsonObject }

    private fun readKey(kind: String, text: String): Any = when (kind) {
        "channel" -> ChannelKey.fromFileText(text)
        "signing" -> SigningKey.fromFileText(text)
        "public" -> PublicKey.fromFileText(text)
        "token" -> Token.fromFileText(text)
        else -> error("unknown key kind $kind")
    }

    private val signingKeys by lazy {
        vectors.cases("keys").filter { it["kind"].asString == "signing" }.map { SigningKey.fromFileText(it["file"].asString) }
    }

    private fun open(case: JsonObject): OpenedDatagram = openDatagram(
        case["group"].asString,
        case["datagram"].asString.hexToBytes(),
        case.getAsJsonArray("keys").map { ChannelKey.fromFileText(it.asString) },
        case.getAsJsonArray("trusted").map { PublicKey.fromFileText(it.asString) },
        case.getAsJsonArray("issuers").map { PublicKey.fromFileText(it.asString) },
        case["now"].asLong.toULong(),
    )

    private fun OpenedDatagram.plainOrFail(context: String): ByteArray = when (this) {
        is OpenedDatagram.Accepted -> plain
        is OpenedDatagram.Dropped -> fail("$context: dropped for $reason")
    }

    @Test
    fun everyKeyFileReadsAndWritesBack() {
        val keys = vectors.cases("keys")
        assertTrue(keys.isNotEmpty())
        for (entry in keys) {
            val name = entry["name"].asString
            val file = entry["file"].asString
            when (val key = readKey(entry["kind"].asString, file)) {
                is ChannelKey -> {
                    assertEquals(file, key.toFileText(), name)
                    assertEquals(entry["id"].asString.toUInt(16), key.id(), name)
                    assertEquals(file, ChannelKey.fromBytes(key.id(), entry["secret"].asString.hexToBytes()).toFileText(), name)
                }
                is SigningKey -> {
                    assertEquals(file, key.toFileText(), name)
                    assertEquals(entry["public"].asString, key.publicKey().toBytes().toHex(), name)
                    assertEquals(file, SigningKey.fromSeed(entry["seed"].asString.hexToBytes()).toFileText(), name)
                }
                is PublicKey -> {
                    assertEquals(file, key.toFileText(), name)
                    assertEquals(entry["fingerprint"].asString, key.fingerprint(), name)
                    assertEquals(file, PublicKey.fromBytes(key.toBytes()).toFileText(), name)
                }
            }
        }
    }

    @Test
    fun everyTokenFileReadsWritesBackAndIsIssuedAgain() {
        val tokens = vectors.cases("tokens")
        assertTrue(tokens.isNotEmpty())
        for (entry in tokens) {
            val name = "token until ${entry["not_after"].asLong}"
            val file = entry["file"].asString
            val token = Token.fromFileText(file)
            assertEquals(file, token.toFileText(), name)
            assertEquals(entry["subject"].asString, token.subject().toBytes().toHex(), name)
            assertEquals(entry["group"].asString, token.group(), name)
            assertEquals(entry["not_after"].asLong.toULong(), token.notAfter(), name)
            assertEquals(entry["issuer"].asString, token.issuer(), name)
            assertEquals(file, Token.fromBytes(token.toBytes()).toFileText(), name)
            val issuer = signingKeys.single { it.publicKey().fingerprint() == entry["issuer"].asString }
            assertEquals(file, Token.issue(issuer, token.subject(), token.group(), token.notAfter()).toFileText(), name)
        }
        val key = SigningKey.generate()
        assertThrowsKind("InvalidConfig", "an expiry beyond the clock") {
            Token.issue(key, key.publicKey(), "ff1e::1", ULong.MAX_VALUE)
        }
    }

    @Test
    fun everyInvalidKeyFileFailsWithItsKind() {
        val invalid = vectors.cases("invalid_key_files")
        assertTrue(invalid.isNotEmpty())
        for (case in invalid) {
            assertThrowsKind(case["error"].asString, case["name"].asString) {
                readKey(case["kind"].asString, case["text"].asString)
            }
        }
        assertThrowsKind("InvalidConfig", "a 31-byte secret") { ChannelKey.fromBytes(1u, ByteArray(31)) }
        assertThrowsKind("InvalidConfig", "an empty seed") { SigningKey.fromSeed(ByteArray(0)) }
    }

    @Test
    fun everySealCaseGivesItsBytesAndOpensBack() {
        val seal = vectors.cases("seal")
        assertTrue(seal.isNotEmpty())
        for (case in seal) {
            val name = case["name"].asString
            val channelKey = case.stringOrNull("channel_key")?.let(ChannelKey::fromFileText)
            val signingKey = case.stringOrNull("signing_key")?.let(SigningKey::fromFileText)
            val token = case.stringOrNull("token")?.let(Token::fromFileText)
            val plain = case["plain"].asString.hexToBytes()
            val sealed = sealDatagram(case["group"].asString, plain, channelKey, signingKey, token)
            assertEquals(case["protected"].asString, sealed.toHex(), name)
            val opened = openDatagram(
                case["group"].asString,
                sealed,
                listOfNotNull(channelKey),
                listOfNotNull(signingKey?.publicKey()),
                listOf(),
                token?.notAfter(),
            )
            assertArrayEquals(plain, opened.plainOrFail(name), name)
        }
    }

    @Test
    fun everyOpenCaseOpensOrIsRefusedWithItsReason() {
        val cases = vectors.cases("open")
        assertTrue(cases.isNotEmpty())
        val reasons = dropReasons()
        for (case in cases) {
            val name = case["name"].asString
            when (case.stringOrNull("kind")) {
                null -> {
                    val plain = open(case).plainOrFail(name)
                    assertEquals(case["plain"].asString, plain.toHex(), name)
                    decodeDatagram(plain)
                }
                "malformed" -> {
                    val error = assertThrowsKind("Malformed", name) { open(case) }
                    val reason = case["reason"].asString
                    assertTrue(error.message!!.contains("($reason)"), "$name: ${error.message}")
                }
                else -> {
                    assertEquals("dropped", case["kind"].asString, name)
                    assertTrue(case["reason"].asString in reasons, name)
                    assertEquals(OpenedDatagram.Dropped(case["reason"].asString), open(case), name)
                }
            }
        }
    }

    @Test
    fun generatedKeysRoundTripThroughTheirFiles() {
        val channelKey = ChannelKey.generate()
        assertEquals(channelKey.toFileText(), ChannelKey.fromFileText(channelKey.toFileText()).toFileText())
        assertNotEquals(channelKey.toFileText(), ChannelKey.generate().toFileText())
        val signingKey = SigningKey.generate()
        val again = SigningKey.fromFileText(signingKey.toFileText())
        assertArrayEquals(signingKey.publicKey().toBytes(), again.publicKey().toBytes())
        val publicKey = signingKey.publicKey()
        assertEquals(publicKey.toFileText(), PublicKey.fromFileText(publicKey.toFileText()).toFileText())
        assertTrue(publicKey.fingerprint().matches(Regex("[0-9a-f]{16}")), publicKey.fingerprint())
    }

    @Test
    fun sealingADatagramThatIsNotPlainIsMalformed() {
        val key = ChannelKey.generate()
        val plain = packMessages("0123456789abcdef", 0u, 1280u, listOf("hello".toByteArray())).single()
        val sealed = sealDatagram("ff1e::1", plain, key, null, null)
        assertThrowsKind("Malformed", "a sealed datagram") { sealDatagram("ff1e::1", sealed, key, null, null) }
        assertThrowsKind("InvalidAddress", "no group") { sealDatagram("not an address", plain, key, null, null) }
        val signingKey = SigningKey.generate()
        val token = Token.issue(signingKey, signingKey.publicKey(), "ff1e::2", 0u)
        assertThrowsKind("InvalidConfig", "a token for another group") {
            sealDatagram("ff1e::1", plain, null, signingKey, token)
        }
        assertThrowsKind("InvalidConfig", "a token without a signing key") {
            sealDatagram("ff1e::2", plain, null, null, token)
        }
    }
}
