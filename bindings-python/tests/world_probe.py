"""Runs inside one host of a sixcast-netlab world for test_channel.py: does one thing with the
public API and prints what it observed as JSON lines, for the test to judge.

    world_probe.py send CHANNEL PAYLOAD...          PAYLOAD: text:WORDS | empty | pattern:SIZE
    world_probe.py recv CHANNEL COUNT TIMEOUT MODE  MODE: recv | iterate | async
    world_probe.py timeout | closed | too-large | async-cancel | io-error | paced
    world_probe.py async-cancel-many COUNT
    world_probe.py async-many CHANNELS
    world_probe.py events-lost
    world_probe.py sender-losses
    world_probe.py reachability STRATUM0             STRATUM0: "[address]:port" nobody serves
    world_probe.py protected-send CHANNEL SPEC PAYLOAD...
    world_probe.py protected-recv CHANNEL SPEC COUNT DROPS TIMEOUT   SPEC: a JSON file of keys
    world_probe.py send-file CHANNEL PATH NAME
    world_probe.py recv-file CHANNEL DIR TIMEOUT
    world_probe.py file-errors DIR
"""

import asyncio
import builtins
import hashlib
import itertools
import json
import logging
import os
import socket
import sys
import threading
import time

import sixcast


def emit(**fields):
    print(json.dumps(fields), flush=True)


def pattern(size):
    """The conformance agents' large payload: byte i is i % 251."""
    return bytes(i % 251 for i in range(size))


def payload_from_spec(spec):
    kind, _, value = spec.partition(":")
    if kind == "text":
        return value
    if kind == "empty":
        return b""
    if kind == "pattern":
        return pattern(int(value))
    raise SystemExit(f"unknown payload spec {spec!r}")


def describe_payload(payload):
    return {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "text": payload.decode() if len(payload) <= 64 else None,
    }


def describe_message(message):
    return {
        "payload": describe_payload(message.payload),
        "bytes_equal_payload": bytes(message) == message.payload,
        "source": message.source,
        "source_port": message.source_port,
        "group": message.group,
        "interface": message.interface,
        "interface_name": message.interface_name,
        "sender": message.sender,
        "seq": message.seq,
        "relayed": message.relayed,
        "path": message.path,
        "repr": repr(message),
    }


def describe_error(err):
    return {
        "class": type(err).__name__,
        "module": type(err).__module__,
        "kind": getattr(err, "kind", None),
        "message": getattr(err, "message", str(err)),
        "is_sixcast_error": isinstance(err, sixcast.Error),
        "is_builtin_timeout": isinstance(err, builtins.TimeoutError),
        "is_os_error": isinstance(err, OSError),
        "errno": getattr(err, "errno", None),
        "str": str(err),
    }


def outcome(action):
    """What calling `action` did: its result, or the error it raised."""
    try:
        return {"returned": repr(action())}
    except Exception as err:  # the probe reports every outcome; the test judges
        return {"raised": describe_error(err)}


def send(channel_name, *specs):
    with sixcast.Context() as context:
        channel = context.channel(channel_name)
        for spec in specs:
            channel.send(payload_from_spec(spec))
        channel.flush()
        emit(node_id=context.node_id, port=context.port, stats=channel.stats().as_dict())


def receive(channel_name, count, timeout, mode):
    count, timeout = int(count), float(timeout)
    with sixcast.Context() as context, context.channel(channel_name) as channel:
        print("READY", flush=True)
        if mode == "recv":
            summary = receive_blocking(channel, count, timeout)
        elif mode == "iterate":
            summary = receive_iterating(context, channel, count, timeout)
        elif mode == "async":
            summary = asyncio.run(receive_async(channel, count, timeout))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        summary["stats"] = channel.stats().as_dict()
        summary["context_stats"] = context.stats().as_dict()
        emit(summary=summary)
    sys.exit(0 if summary["received"] == count else 3)


def receive_blocking(channel, count, timeout):
    deadline = time.monotonic() + timeout
    for received in range(count):
        try:
            message = channel.recv(timeout=max(0.0, deadline - time.monotonic()))
        except sixcast.TimeoutError:
            return {"received": received}
        emit(message=describe_message(message))
    return {"received": count}


def receive_iterating(context, channel, count, timeout):
    """`for message in channel` until `count` messages arrived, then once more to see the loop
    end when another thread closes the context."""
    closer = threading.Timer(timeout, context.close)
    closer.start()
    received = 0
    for message in channel:
        emit(message=describe_message(message))
        received += 1
        if received == count:
            break
    closer.cancel()
    if received < count:
        return {"received": received}
    threading.Timer(0.2, context.close).start()
    started = time.monotonic()
    extra = [describe_message(message) for message in channel]
    return {"received": received, "after_close": extra, "ended_after": time.monotonic() - started}


async def receive_async(channel, count, timeout):
    """`async for message in channel` until `count` messages arrived or `timeout` passed."""
    received = 0

    async def consume():
        nonlocal received
        async for message in channel:
            emit(message=describe_message(message))
            received += 1
            if received == count:
                return

    try:
        await asyncio.wait_for(consume(), timeout)
    except asyncio.TimeoutError:
        pass
    return {"received": received}


async def await_with_ticker(awaitable):
    """Awaits while a task ticks every 10 ms; reports the outcome, the ticks and the longest gap
    between ticks (as long as the wait if the await blocked the event loop)."""
    ticks = []

    async def tick():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    await asyncio.sleep(0)
    started = time.monotonic()
    try:
        result = {"returned": repr(await awaitable)}
    except Exception as err:  # reported, not judged, as in outcome()
        result = {"raised": describe_error(err)}
    result["seconds"] = time.monotonic() - started
    ticker.cancel()
    result["ticks"] = len(ticks)
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:])]
    result["longest_gap"] = max(gaps, default=result["seconds"])
    return result


def check_timeout():
    with sixcast.Context() as context, context.channel("probe-timeout") as channel:
        started = time.monotonic()
        blocking = outcome(lambda: channel.recv(timeout=0.3))
        blocking_seconds = time.monotonic() - started
        emit(
            recv=blocking,
            recv_seconds=blocking_seconds,
            recv_async=asyncio.run(await_with_ticker(channel.recv_async(timeout=0.5))),
            try_recv=outcome(channel.try_recv),
            negative_timeout=outcome(lambda: channel.recv(timeout=-1)),
        )


def check_closed():
    context = sixcast.Context()
    channel = context.channel("probe-closed")
    channel.join()
    blocked = {}

    def receive_until_closed():
        started = time.monotonic()
        blocked.update(outcome(channel.recv))
        blocked["seconds"] = time.monotonic() - started

    receiver = threading.Thread(target=receive_until_closed)
    receiver.start()
    time.sleep(0.2)
    context.close()
    receiver.join(5)
    emit(
        closed=context.closed,
        repr=repr(context),
        blocked_recv=blocked,
        send=outcome(lambda: channel.send(b"late")),
        flush=outcome(channel.flush),
        recv=outcome(lambda: channel.recv(timeout=1)),
        try_recv=outcome(channel.try_recv),
        join=outcome(channel.join),
        channel=outcome(lambda: context.channel("another")),
        iterate=outcome(lambda: list(channel)),
        close_again=outcome(context.close),
        with_block_closes=with_block_closes(),
    )


def with_block_closes():
    with sixcast.Context() as context:
        pass
    return context.closed


def check_too_large():
    with sixcast.Context(max_message_size=1000) as small, sixcast.Context() as default:
        emit(
            configured=outcome(lambda: small.channel("probe-large").send(bytes(1001))),
            at_limit=outcome(lambda: small.channel("probe-large").send(bytes(1000))),
            default=outcome(
                lambda: default.channel("probe-large").send(
                    bytes(sixcast.DEFAULT_MAX_MESSAGE_SIZE + 1)
                )
            ),
        )


def check_paced():
    """A context that sends 10 messages a second: try_send() sends the first at once and
    refuses the second, send(timeout=0.05) refuses too, and send(timeout=0.5) waits for the
    turn, while another thread keeps running. A second context receives what left."""
    with sixcast.Context() as receiver, sixcast.Context(send_rate_messages=10) as paced:
        inbox = receiver.channel("probe-paced")
        inbox.join()
        outbox = paced.channel("probe-paced")
        first = outcome(lambda: outbox.try_send(b"first"))
        refused = outcome(lambda: outbox.try_send(b"refused"))
        too_short = outcome(lambda: outbox.send(b"also refused", timeout=0.05))
        negative = outcome(lambda: outbox.send(b"bad timeout", timeout=-1))
        ticks = 0
        ticking = threading.Event()

        def tick():
            nonlocal ticks
            while not ticking.wait(0.005):
                ticks += 1

        ticker = threading.Thread(target=tick)
        ticker.start()
        started = time.monotonic()
        waited = outcome(lambda: outbox.send(b"second", timeout=0.5))
        waited_seconds = time.monotonic() - started
        ticking.set()
        ticker.join(5)
        outbox.flush()
        received = []
        for _ in range(3):
            try:
                received.append(inbox.recv(timeout=1 if len(received) < 2 else 0.3).payload.decode())
            except sixcast.TimeoutError:
                break
        emit(
            first=first,
            refused=refused,
            too_short=too_short,
            negative=negative,
            waited=waited,
            waited_seconds=waited_seconds,
            ticks=ticks,
            sent=outbox.stats().messages_sent,
            received=received,
        )


def check_async_cancel():
    """Cancels an asyncio receive, has another context send right away, and receives again:
    the message must arrive, although the cancelled receive was waiting for it."""
    with sixcast.Context() as receiver, sixcast.Context() as sender:
        channel = receiver.channel("probe-cancel")
        channel.join()

        async def scenario():
            try:
                await asyncio.wait_for(channel.recv_async(), 0.15)
                cancelled = False
            except asyncio.TimeoutError:
                cancelled = True
            sender.channel("probe-cancel").send(b"after the cancel")
            sender.channel("probe-cancel").flush()
            message = await channel.recv_async(timeout=5)
            return cancelled, message

        cancelled, message = asyncio.run(scenario())
        emit(cancelled=cancelled, message=describe_message(message))


def check_async_cancel_many(count):
    """Cancels asyncio receives over and over, after 1 to 20 ms, while another thread sends COUNT
    messages 2 ms apart; then receives until the channel stays quiet. Reports the payloads in the
    order they arrived: each message must arrive exactly once."""
    count = int(count)
    with sixcast.Context() as receiver, sixcast.Context() as sender:
        channel = receiver.channel("probe-cancel-many")
        channel.join()
        outbox = sender.channel("probe-cancel-many")

        def send_all():
            for index in range(count):
                outbox.send(str(index))
                outbox.flush()
                time.sleep(0.002)

        async def scenario():
            received, cancelled = [], 0
            sending = threading.Thread(target=send_all)
            sending.start()
            for attempt in itertools.count():
                if not sending.is_alive():
                    break
                timeout = (0.001, 0.005, 0.02)[attempt % 3]
                try:
                    message = await asyncio.wait_for(channel.recv_async(), timeout)
                    received.append(message.payload.decode())
                except asyncio.TimeoutError:
                    cancelled += 1
            sending.join()
            while True:
                try:
                    received.append((await channel.recv_async(timeout=1)).payload.decode())
                except sixcast.TimeoutError:
                    return received, cancelled

        received, cancelled = asyncio.run(scenario())
        emit(received=received, cancelled=cancelled, stats=channel.stats().as_dict())


def check_async_many(count):
    """Leaves an asyncio receive pending on each of COUNT channels, then sends to a few of them,
    one at a time: reports the threads before and while the receives wait, and how long each
    sent message took to complete its await."""
    count = int(count)
    with sixcast.Context() as receiver, sixcast.Context() as sender:
        channels = [receiver.channel(f"probe-many-{index}") for index in range(count)]
        targets = [0, count // 3, count // 2, count - 1, 7 % count]
        for index in set(targets):
            channels[index].join()

        async def scenario():
            threads_before = threading.active_count(), len(os.listdir("/proc/self/task"))
            tasks = [asyncio.ensure_future(channel.recv_async(timeout=30)) for channel in channels]
            await asyncio.sleep(0.2)  # every receive is waiting
            threads_waiting = threading.active_count(), len(os.listdir("/proc/self/task"))
            latencies = []
            for index in targets:
                outbox = sender.channel(f"probe-many-{index}")
                sent = time.monotonic()
                outbox.send(f"to {index}")
                outbox.flush()
                message = await tasks[index]
                latencies.append(time.monotonic() - sent)
                assert message.payload == f"to {index}".encode()
                tasks[index] = asyncio.ensure_future(channels[index].recv_async(timeout=30))
            pending = sum(not task.done() for task in tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return threads_before, threads_waiting, latencies, pending

        before, waiting, latencies, pending = asyncio.run(scenario())
        emit(threads_before=before, threads_waiting=waiting, latencies=latencies, pending=pending)


def check_events_lost():
    """Sends messages 0, 1 and 4 of a made-up sender to a channel of this host and reports the
    events the context raised, and what it reported before and after."""
    with sixcast.Context() as context:
        channel = context.channel("probe-events")
        channel.join()
        before = context.try_event()
        index = socket.if_nametoindex(context.interfaces[0])
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            for seq in (0, 1, 4):
                for datagram in sixcast.pack_messages("0000000000000042", seq, 1232, [b"numbered"]):
                    sender.sendto(datagram, (channel.group, context.port))
        received = [channel.recv(timeout=5).seq for _ in range(3)]
        event = context.next_event(timeout=5)
        try:
            context.next_event(timeout=0.2)
            timed_out = False
        except sixcast.TimeoutError:
            timed_out = True
        emit(before=before, event=event, received=received, lost=channel.stats().lost,
             timed_out=timed_out, dropped=context.events_dropped)


def check_sender_losses():
    """Sends messages 0, 1 and 4 of one made-up sender and 0, 1 and 2 of another to a channel of
    this host and reports its losses per sender, before and after."""
    with sixcast.Context() as context:
        channel = context.channel("probe-sender-losses")
        channel.join()
        before = channel.sender_losses()
        index = socket.if_nametoindex(context.interfaces[0])
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            for node, seq in [("0000000000000042", 0), ("0000000000000042", 1), ("0000000000000042", 4),
                              ("0000000000000007", 0), ("0000000000000007", 1), ("0000000000000007", 2)]:
                for datagram in sixcast.pack_messages(node, seq, 1232, [b"numbered"]):
                    sender.sendto(datagram, (channel.group, context.port))
        received = [channel.recv(timeout=5) for _ in range(6)]
        emit(before=before, received=[[message.sender, message.seq] for message in received],
             lost=channel.stats().lost, losses=channel.sender_losses())


def check_io_error():
    """Opens a context on a UDP port that a socket without SO_REUSEADDR holds."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as holder:
        holder.bind(("::", 0))
        port = holder.getsockname()[1]
        emit(open=outcome(lambda: sixcast.Context(port=port)))


def describe_reachability(reachability):
    if reachability is None:
        return None
    probe = reachability.probe
    return {
        "probe": None
        if probe is None
        else {
            "stratum0": probe.stratum0,
            "answered": probe.answered,
            "rtt": probe.rtt,
            "native_down": probe.native_down,
            "native_up": probe.native_up,
            "observed": probe.observed,
        },
        "relay": reachability.relay,
        "offers": [
            {
                "address": offer.address,
                "rtt": offer.rtt,
                "load": offer.load,
                "repeater": offer.repeater,
            }
            for offer in reachability.offers
        ],
        "last_error": reachability.last_error,
        "gateway": reachability.gateway,
        "serving": reachability.serving,
        "stratum0": reachability.stratum0,
        "rejected_relays": reachability.rejected_relays,
        "held_dropped": reachability.held_dropped,
        "repr": repr(reachability),
    }


def check_reachability(stratum0):
    """Opens a context whose Stratum 0 does not answer and reports what reachability() says
    until a probe completes or an error is recorded (at most 10 s)."""
    with sixcast.Context(stratum0=stratum0, probe_timeout=0.3) as context:
        emit(config_stratum0=context.config.stratum0, probe_timeout=context.config.probe_timeout)
        emit(initial=describe_reachability(context.reachability()))
        deadline = time.monotonic() + 10
        reachability = context.reachability()
        while time.monotonic() < deadline and (
            reachability.probe is None and reachability.last_error is None
        ):
            time.sleep(0.05)
            reachability = context.reachability()
        emit(settled=describe_reachability(reachability))


def check_logging(stratum0):
    """Opens a context whose Stratum 0 does not answer, with a handler on Python's "sixcast"
    logger, until the context records that it cannot reach the core (at most 10 s); reports
    every record the library logged."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(
                {"logger": record.name, "level": record.levelname, "message": record.getMessage()}
            )

    logging.getLogger("sixcast").addHandler(Keep())
    with sixcast.Context(stratum0=stratum0, probe_timeout=0.3) as context:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and context.reachability().last_error is None:
            time.sleep(0.05)
        emit(last_error=context.reachability().last_error)
    emit(records=records)


def protect(channel, spec_path):
    """Gives `channel` the keys of the JSON file `spec_path`: key file texts under "key" (set_key),
    "sign" (sign_with), "token" (present), "trust" and "issuers" (lists)."""
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    if "key" in spec:
        channel.set_key(sixcast.ChannelKey.from_file_text(spec["key"]))
    if "sign" in spec:
        channel.sign_with(sixcast.SigningKey.from_file_text(spec["sign"]))
    if "token" in spec:
        channel.present(sixcast.Token.from_file_text(spec["token"]))
    for text in spec.get("trust", []):
        channel.trust(sixcast.PublicKey.from_file_text(text))
    for text in spec.get("issuers", []):
        channel.trust_issuer(sixcast.PublicKey.from_file_text(text))


def protected_send(channel_name, spec_path, *specs):
    with sixcast.Context() as context:
        channel = context.channel(channel_name)
        protect(channel, spec_path)
        for spec in specs:
            channel.send(payload_from_spec(spec))
        channel.flush()
        emit(stats=channel.stats().as_dict())


def protected_receive(channel_name, spec_path, count, drops, timeout):
    """Receives with the keys of SPEC until `count` messages arrived and the channel counted at
    least `drops` drops, or `timeout` seconds passed."""
    count, drops, deadline = int(count), int(drops), time.monotonic() + float(timeout)
    with sixcast.Context() as context, context.channel(channel_name) as channel:
        protect(channel, spec_path)
        print("READY", flush=True)
        received = 0
        while time.monotonic() < deadline and (
            received < count or sum(channel.stats().drops.values()) < drops
        ):
            try:
                message = channel.recv(timeout=0.1)
            except sixcast.TimeoutError:
                continue
            emit(message=describe_message(message))
            received += 1
        emit(summary={"received": received, "stats": channel.stats().as_dict()})


def send_file(channel_name, path, name):
    """Sends the file at PATH as NAME on a reliable context; closing it waits for the receivers'
    last repairs."""
    with sixcast.Context(reliable=True) as context:
        sent = context.channel(channel_name).send_file(path, name=name)
        node_id = context.node_id
    emit(sent=sent, node_id=node_id)


def receive_file(channel_name, folder, timeout):
    """Receives one file into DIR with a FileReceiver; reports its outcome (or the error) and
    the receiver's stats."""
    receiver = sixcast.FileReceiver(folder)
    with sixcast.Context() as context, context.channel(channel_name) as channel:
        print("READY", flush=True)
        try:
            emit(file=receiver.recv(channel, timeout=float(timeout)))
        except sixcast.Error as err:  # reported for the test to judge
            emit(raised=describe_error(err))
        emit(stats=receiver.stats(), channel_stats=channel.stats().as_dict())


def check_file_errors(folder):
    """What send_file and FileReceiver.recv raise for bad arguments and for silence. FOLDER has
    a file "payload"."""
    payload = os.path.join(folder, "payload")
    with sixcast.Context(reliable=True) as context:
        channel = context.channel("probe-file-errors")
        channel.join()
        receiver = sixcast.FileReceiver(folder)
        started = time.monotonic()
        timed_out = outcome(lambda: receiver.recv(channel, timeout=0.3))
        emit(
            path_name=outcome(lambda: channel.send_file(payload, name="../x")),
            hidden_name=outcome(lambda: channel.send_file(payload, name=".x")),
            no_passes=outcome(lambda: channel.send_file(payload, passes=0)),
            missing=outcome(lambda: channel.send_file(os.path.join(folder, "missing"))),
            folder=outcome(lambda: channel.send_file(folder)),
            negative_timeout=outcome(lambda: receiver.recv(channel, timeout=-1)),
            recv=timed_out,
            recv_seconds=time.monotonic() - started,
            stats=receiver.stats(),
            sent=channel.stats().messages_sent,
        )


COMMANDS = {
    "send": send,
    "recv": receive,
    "timeout": check_timeout,
    "closed": check_closed,
    "too-large": check_too_large,
    "paced": check_paced,
    "async-cancel": check_async_cancel,
    "async-cancel-many": check_async_cancel_many,
    "async-many": check_async_many,
    "events-lost": check_events_lost,
    "sender-losses": check_sender_losses,
    "io-error": check_io_error,
    "reachability": check_reachability,
    "logging": check_logging,
    "protected-send": protected_send,
    "protected-recv": protected_receive,
    "send-file": send_file,
    "recv-file": receive_file,
    "file-errors": check_file_errors,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
