// Swift idioms over the generated binding (Sixcast.swift, made by build-xcframework.sh).

extension Channel {
    /// Every message of the channel as an `AsyncThrowingStream`: it receives with `recvAsync`,
    /// so waiting suspends and holds no thread, and it finishes when the context shuts down.
    /// Messages go to one taker each: two streams of one channel share its messages.
    public func messages() -> AsyncThrowingStream<Message, Error> {
        AsyncThrowingStream { continuation in
            let receiving = Task {
                do {
                    while !Task.isCancelled {
                        continuation.yield(try await self.recvAsync(timeoutMs: nil))
                    }
                } catch SixcastError.Closed {
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in receiving.cancel() }
        }
    }
}
