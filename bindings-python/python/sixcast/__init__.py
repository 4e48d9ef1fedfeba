"""sixcast: IPv6 multicast group messaging.

A *channel* is a name such as ``"webservers"``; sixcast hashes it into an IPv6 multicast group,
and every process that joins the channel receives what any process sends to it::

    import sixcast

    with sixcast.Context() as context:
        channel = context.channel("webservers")
        channel.join()
        channel.send(b"restart nginx")
        channel.flush()
        try:
            message = channel.recv(timeout=5)
            print(message.payload, "from", message.source, "seq", message.seq)
        except sixcast.TimeoutError:
            print("nothing yet")

Every error is a :class:`sixcast.Error` whose ``kind`` is a stable name shared by every
language sixcast supports; each kind has its own subclass (``sixcast.TimeoutError``, which is
also the builtin ``TimeoutError``, ``sixcast.IoError``, also an ``OSError``, and so on).
"""

from ._sixcast import (
    DEFAULT_DATAGRAM_SIZE,
    DEFAULT_HOP_LIMIT,
    DEFAULT_LINGER,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PORT,
    DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RECV_BUFFER,
    FLAG_RELAYED,
    FRAGMENT_HEADER_LEN,
    HEADER_LEN,
    LIBRECAST_PORT,
    MAGIC,
    MAX_DATAGRAM_SIZE,
    MAX_MESSAGE_SIZE_LIMIT,
    MAX_NAME_LEN,
    MIN_DATAGRAM_SIZE,
    PROTOCOL_VERSION,
    Channel,
    ClosedError,
    CONTROL_MAC_LEN,
    CONTROL_MAGIC,
    CONTROL_SECRET_LEN,
    Config,
    Context,
    ControlMessage,
    Error,
    Fragment,
    InvalidAddressError,
    InvalidConfigError,
    InvalidNameError,
    IoError,
    MalformedError,
    Message,
    MessageBatch,
    MessageTooLargeError,
    ProbeReport,
    Reachability,
    RelayOffer,
    Stats,
    TimeoutError,
    UnknownInterfaceError,
    UnsupportedError,
    __version__,
    control_mac,
    decode_control,
    decode_datagram,
    group_address,
    pack_messages,
    relayed_address,
)

__all__ = [
    "DEFAULT_DATAGRAM_SIZE",
    "DEFAULT_HOP_LIMIT",
    "DEFAULT_LINGER",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_PORT",
    "DEFAULT_QUEUE_CAPACITY",
    "DEFAULT_RECV_BUFFER",
    "FLAG_RELAYED",
    "FRAGMENT_HEADER_LEN",
    "HEADER_LEN",
    "LIBRECAST_PORT",
    "MAGIC",
    "MAX_DATAGRAM_SIZE",
    "MAX_MESSAGE_SIZE_LIMIT",
    "MAX_NAME_LEN",
    "MIN_DATAGRAM_SIZE",
    "PROTOCOL_VERSION",
    "Channel",
    "ClosedError",
    "CONTROL_MAC_LEN",
    "CONTROL_MAGIC",
    "CONTROL_SECRET_LEN",
    "Config",
    "Context",
    "ControlMessage",
    "Error",
    "Fragment",
    "InvalidAddressError",
    "InvalidConfigError",
    "InvalidNameError",
    "IoError",
    "MalformedError",
    "Message",
    "MessageBatch",
    "MessageTooLargeError",
    "ProbeReport",
    "Reachability",
    "RelayOffer",
    "Stats",
    "TimeoutError",
    "UnknownInterfaceError",
    "UnsupportedError",
    "__version__",
    "control_mac",
    "decode_control",
    "decode_datagram",
    "group_address",
    "pack_messages",
    "relayed_address",
]
