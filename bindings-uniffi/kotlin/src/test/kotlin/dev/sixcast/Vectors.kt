// Access to the shared conformance vectors (tests/conformance/vectors) and the helpers every
// vector test needs: hex, channel names as bytes, and addresses compared as 16 bytes.
package dev.sixcast

import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import java.io.File
import java.net.InetAddress

object Vectors {
    private val dir = File(
        System.getProperty("sixcast.vectors")
            ?: error("system property sixcast.vectors (the vectors folder) is not set"),
    )

    fun load(file: String): JsonObject = JsonParser.parseString(File(dir, file).readText()).asJsonObject

    /** The exception class name of each ErrorKind name: the `uniffi` column of errors.json. */
    val exceptionNames: Map<String, String> by lazy {
        load("errors.json").getAsJsonArray("kinds").associate {
            val kind = it.asJsonObject
            kind["name"].asString to kind["uniffi"].asString
        }
    }
}

fun String.hexToBytes(): ByteArray {
    require(length % 2 == 0) { "odd-length hex: $this" }
    return ByteArray(length / 2) { substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}

fun ByteArray.toHex(): String = joinToString("") { "%02x".format(it) }

/** A channel name of a vector: `name_hex`, `name_utf8` or `name_repeat` {byte_hex, count}. */
fun JsonObject.nameBytes(): ByteArray {
    this["name_hex"]?.let { return it.asString.hexToBytes() }
    this["name_utf8"]?.let { return it.asString.toByteArray() }
    val repeat = getAsJsonObject("name_repeat")
    val byte = repeat["byte_hex"].asString.hexToBytes().single()
    return ByteArray(repeat["count"].asInt) { byte }
}

/** The string value of a field, or null when the field is JSON null or absent. */
fun JsonObject.stringOrNull(field: String): String? =
    get(field)?.takeUnless(JsonElement::isJsonNull)?.asString

/** The 16 bytes of an IPv6 address in text form (a literal: no name lookup happens). */
fun ipv6Bytes(text: String): List<Byte> = InetAddress.getByName(text).address.toList()

/** Asserts that [block] throws the SixcastException case errors.json names for [kind]. */
fun assertThrowsKind(kind: String, context: String, block: () -> Unit): SixcastException {
    val expected = Vectors.exceptionNames[kind] ?: error("errors.json has no kind $kind")
    try {
        block()
    } catch (e: SixcastException) {
        org.junit.jupiter.api.Assertions.assertEquals(expected, e::class.simpleName, "$context: ${e.message}")
        return e
    }
    org.junit.jupiter.api.Assertions.fail<Unit>("$context: expected SixcastException.$expected, nothing was thrown")
    error("unreachable")
}
