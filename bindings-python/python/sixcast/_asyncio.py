"""asyncio receive for sixcast channels (Channel.recv_async and ``async for``).

A waiting coroutine parks on the event loop itself: the loop watches the channel's readiness
descriptor (``Channel.fileno()``) with ``add_reader``, so no thread waits, however many receives
are pending. When the descriptor turns readable, the loop wakes every coroutine waiting on that
channel and each takes its message with ``try_recv``: a cancelled await never takes one, so it
loses none. ``try_recv`` finding nothing re-arms the descriptor.
"""

import asyncio
import weakref

from ._sixcast import ClosedError

# For each running loop, the futures waiting on each descriptor it watches.
_waiting = weakref.WeakKeyDictionary()


def _readable(loop, fd):
    """A future that completes once ``fd`` polls readable."""
    by_fd = _waiting.setdefault(loop, {})
    if fd not in by_fd:
        by_fd[fd] = []
        loop.add_reader(fd, _wake, loop, fd)
    future = loop.create_future()
    by_fd[fd].append(future)
    return future


def _wake(loop, fd):
    loop.remove_reader(fd)
    for future in _waiting[loop].pop(fd):
        if not future.done():
            future.set_result(None)


def _forget(loop, fd, future):
    """Stops waiting with ``future``, and stops watching ``fd`` once nobody waits on it."""
    futures = _waiting.get(loop, {}).get(fd)
    if futures is None or future not in futures:
        return
    futures.remove(future)
    if not futures:
        del _waiting[loop][fd]
        loop.remove_reader(fd)


async def recv(channel, timeout=None):
    """Waits for the next message of ``channel``; ``timeout`` as for Channel.recv."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    fd = channel.fileno()
    while True:
        message = channel.try_recv()
        if message is not None:
            return message
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            # Raises the core's TimeoutError, unless a message arrived just now.
            return channel.recv(timeout=0)
        readable = _readable(loop, fd)
        try:
            await asyncio.wait((readable,), timeout=remaining)
        finally:
            _forget(loop, fd, readable)
            readable.cancel()


async def next_message(channel):
    """One step of ``async for message in channel``: it ends when the context closes."""
    try:
        return await recv(channel)
    except ClosedError:
        raise StopAsyncIteration from None
