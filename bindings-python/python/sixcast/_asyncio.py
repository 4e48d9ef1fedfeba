"""asyncio receive for sixcast channels (Channel.recv_async and ``async for``).

The waiting happens on the event loop's default executor, in calls to
``Channel._wait_readable`` that each block at most 0.1 s and never take a message: the coroutine
takes it with ``try_recv`` once the wait returns. So the event loop never blocks, a cancelled
await holds its executor thread for at most 0.1 s more, and loses no message.
"""

import asyncio

from ._sixcast import ClosedError


async def recv(channel, timeout=None):
    """Waits for the next message of ``channel``; ``timeout`` as for Channel.recv."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        message = channel.try_recv()
        if message is not None:
            return message
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            # Raises the core's TimeoutError, unless a message arrived just now.
            return channel.recv(timeout=0)
        await loop.run_in_executor(None, channel._wait_readable, remaining)


async def next_message(channel):
    """One step of ``async for message in channel``: it ends when the context closes."""
    try:
        return await recv(channel)
    except ClosedError:
        raise StopAsyncIteration from None
