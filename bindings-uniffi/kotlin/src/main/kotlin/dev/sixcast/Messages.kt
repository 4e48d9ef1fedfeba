// Kotlin idioms over the generated binding (target/generated-sources/uniffi).
package dev.sixcast

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/**
 * Every message of the channel as a cold [Flow]. A collector receives with [Channel.recvAsync],
 * so waiting suspends and holds no thread; the flow completes when the context shuts down.
 * Messages go to one taker each: two collectors of one channel share its messages.
 */
fun Channel.messages(): Flow<Message> = flow {
    while (true) {
        val message = try {
            recvAsync(null)
        } catch (closed: SixcastException.Closed) {
            return@flow
        }
        emit(message)
    }
}
