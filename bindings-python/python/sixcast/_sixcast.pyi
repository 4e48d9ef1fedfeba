"""Type stubs of the extension module; the public names are re-exported by ``sixcast``."""

import builtins
import os
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, TypedDict, final

from typing_extensions import Buffer, Self, TypeAlias

_BytesLike: TypeAlias = str | Buffer

__version__: str

# Addressing (the core's `addr` module).
DEFAULT_PORT: int
LIBRECAST_PORT: int
MAX_NAME_LEN: int
FLAG_RELAYED: int

# Wire format (the core's `wire` module).
MAGIC: bytes
CONTROL_MAGIC: bytes
CONTROL_MAC_LEN: int
CONTROL_SECRET_LEN: int
PROTOCOL_VERSION: int
HEADER_LEN: int
FRAGMENT_HEADER_LEN: int
MIN_DATAGRAM_SIZE: int
DEFAULT_DATAGRAM_SIZE: int
MAX_DATAGRAM_SIZE: int
DEFAULT_MAX_MESSAGE_SIZE: int
MAX_MESSAGE_SIZE_LIMIT: int
TYPE_MANIFEST: int
DIGEST_LEN: int
MAX_DIGESTS: int

# Channel security (the core's `crypto` module).
FLAG_SEALED: int
FLAG_SIGNED: int
FLAG_TOKEN: int
FLAG_COVERED: int
KEY_ID_LEN: int
TAG_LEN: int
SEAL_OVERHEAD: int
SIGNATURE_LEN: int
SIGNATURE_OVERHEAD: int
FINGERPRINT_LEN: int
SEAL_KEY_CONTEXT: str
DIGEST_CONTEXT: str
SIGNATURE_DOMAIN: bytes
TOKEN_LEN: int
TOKEN_DOMAIN: bytes
_DropReason: TypeAlias = Literal[
    "not_sealed",
    "no_key",
    "bad_tag",
    "not_signed",
    "untrusted_signer",
    "bad_signature",
    "expired",
    "replay",
    "unverified",
]
DROP_REASONS: tuple[_DropReason, ...]

# Configuration defaults (the core's `config` module).
DEFAULT_HOP_LIMIT: int
DEFAULT_LINGER: float
DEFAULT_QUEUE_BYTES: int
DEFAULT_QUEUE_CAPACITY: int
DEFAULT_RECV_BUFFER: int

class Error(Exception):
    """Base class of every sixcast error."""

    kind: str | None
    """The stable name of the error's category, for example "Timeout"."""
    message: str
    """What went wrong and what to do."""

class InvalidNameError(Error):
    """A channel name is not acceptable (for example longer than MAX_NAME_LEN bytes)."""

class InvalidConfigError(Error):
    """A configuration value is out of range or inconsistent with the rest."""

class InvalidAddressError(Error):
    """An address is not of the form the operation needs."""

class UnknownInterfaceError(Error):
    """A named network interface does not exist or cannot carry multicast."""

class MessageTooLargeError(Error):
    """A message is larger than the configured maximum message size."""

class MalformedError(Error):
    """Bytes do not form a valid sixcast datagram."""

    reason: str | None
    """The first rule the bytes break, for example "truncated" (set by decode_datagram,
    decode_repair, decode_manifest, ...)."""

class TimeoutError(Error, builtins.TimeoutError):
    """A blocking call did not complete in time."""

class ClosedError(Error):
    """The context has been closed."""

class IoError(Error, OSError):
    """The operating system refused a network operation."""

class UnsupportedError(Error):
    """The platform or the chosen profile does not support the operation."""

_Profile = Literal["sixcast", "ssm", "embedded-rp", "librecast"]
_Scope = Literal["link", "site", "org", "organization", "global"]

@final
class Config:
    """Settings of a Context; every field is a keyword argument."""

    def __new__(
        cls,
        *,
        profile: _Profile | None = None,
        rp: str | None = None,
        scope: _Scope | None = None,
        port: int | None = None,
        interfaces: Sequence[str] | None = None,
        hop_limit: int | None = None,
        loopback: bool | None = None,
        max_datagram_size: int | None = None,
        max_message_size: int | None = None,
        linger: float | None = None,
        packing: bool | None = None,
        queue_capacity: int | None = None,
        queue_bytes: int | None = None,
        recv_buffer: int | None = None,
        send_rate_messages: int | None = None,
        send_rate_bytes: int | None = None,
        reliable: bool | None = None,
        reassembly_timeout: float | None = None,
        reassembly_memory: int | None = None,
        stratum0: str | None = None,
        domain: str | None = None,
        dns_server: str | None = None,
        probe_timeout: float | None = None,
        probe_interval: float | None = None,
        relay_keys: Sequence[PublicKey] | None = None,
        relay_issuers: Sequence[PublicKey] | None = None,
    ) -> Self: ...
    def validate(self) -> None:
        """Checks every field; raises InvalidConfigError naming the first bad one."""
    @property
    def profile(self) -> _Profile: ...
    @property
    def rp(self) -> str | None: ...
    @property
    def scope(self) -> Literal["link", "site", "org", "global"]: ...
    @property
    def port(self) -> int | None: ...
    @property
    def stratum0(self) -> str | None:
        """The core's Stratum 0, "[address]:port"; None when the context does not probe."""
    @property
    def domain(self) -> str | None:
        """The domain whose ``_sixcast._udp`` SRV records name Stratum 0; None for none."""
    @property
    def dns_server(self) -> str | None:
        """The DNS server asked for ``domain``, "[address]:port"; None for the system's."""
    @property
    def probe_timeout(self) -> float:
        """Seconds a probe of native reachability may take."""
    @property
    def probe_interval(self) -> float:
        """Seconds between probes once a path is settled; at least ``probe_timeout``."""
    @property
    def relay_keys(self) -> list[PublicKey]:
        """Pinned relay identity keys: tunnel only through a relay that proves one."""
    @property
    def relay_issuers(self) -> list[PublicKey]:
        """Trusted relay voucher issuers: also tunnel through relays they vouched for."""
    @property
    def effective_port(self) -> int:
        """``port``, or the profile's default when it is None."""
    @property
    def interfaces(self) -> list[str]: ...
    @property
    def hop_limit(self) -> int: ...
    @property
    def loopback(self) -> bool: ...
    @property
    def max_datagram_size(self) -> int: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def linger(self) -> float: ...
    @property
    def packing(self) -> bool: ...
    @property
    def queue_capacity(self) -> int: ...
    @property
    def queue_bytes(self) -> int: ...
    @property
    def recv_buffer(self) -> int: ...
    @property
    def send_rate_messages(self) -> int: ...
    @property
    def send_rate_bytes(self) -> int: ...
    @property
    def reliable(self) -> bool:
        """Whether channels repair what receivers miss; needs the sixcast header."""
    @property
    def reassembly_timeout(self) -> float: ...
    @property
    def reassembly_memory(self) -> int: ...

@final
class Message:
    """A message received on a channel, with where it came from and how it arrived."""

    @property
    def payload(self) -> bytes: ...
    @property
    def source(self) -> str: ...
    @property
    def source_port(self) -> int: ...
    @property
    def group(self) -> str: ...
    @property
    def interface(self) -> int: ...
    @property
    def interface_name(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def relayed(self) -> bool: ...
    @property
    def path(self) -> Literal["native", "relay", "gateway"]:
        """How the message arrived; "gateway": re-sent by this segment's Stratum 1 gateway."""
    def __bytes__(self) -> bytes: ...

@final
class Stats:
    """Counters of a channel, or of a whole context."""

    @property
    def messages_sent(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...
    @property
    def datagrams_sent(self) -> int: ...
    @property
    def messages_received(self) -> int: ...
    @property
    def bytes_received(self) -> int: ...
    @property
    def datagrams_received(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    @property
    def own_dropped(self) -> int: ...
    @property
    def queue_overflow(self) -> int: ...
    @property
    def lost(self) -> int:
        """Messages never heard: sequence numbers a sender skipped, less late arrivals."""
    @property
    def reassembly_dropped(self) -> int: ...
    @property
    def unknown_group(self) -> int: ...
    @property
    def nacks_sent(self) -> int: ...
    @property
    def nacks_received(self) -> int: ...
    @property
    def repairs_sent(self) -> int: ...
    @property
    def repair_bytes_sent(self) -> int: ...
    @property
    def repairs_received(self) -> int: ...
    @property
    def packets_recovered(self) -> int: ...
    @property
    def packets_lost(self) -> int:
        """Packets of reliable senders given up; their messages count in ``lost``."""
    @property
    def drops(self) -> dict[_DropReason, int]:
        """What the channel's keys refused, by reason (every name of DROP_REASONS)."""
    def as_dict(self) -> dict[str, int | dict[_DropReason, int]]: ...

@final
class ChannelKey:
    """A channel's symmetric key; ``id`` names it in sealed datagrams."""

    @staticmethod
    def generate() -> ChannelKey: ...
    @staticmethod
    def from_bytes(id: int, secret: _BytesLike) -> ChannelKey: ...
    @staticmethod
    def from_file_text(text: str) -> ChannelKey:
        """Raises InvalidConfigError for anything but a channel key file."""
    def to_file_text(self) -> str: ...
    @property
    def id(self) -> int: ...

@final
class SigningKey:
    """A sender's Ed25519 signing key."""

    @staticmethod
    def generate() -> SigningKey: ...
    @staticmethod
    def from_seed(seed: _BytesLike) -> SigningKey: ...
    @staticmethod
    def from_file_text(text: str) -> SigningKey:
        """Raises InvalidConfigError for anything but a signing key file."""
    def to_file_text(self) -> str: ...
    def public_key(self) -> PublicKey: ...

@final
class PublicKey:
    """A sender's Ed25519 public key, as receivers trust it."""

    @staticmethod
    def from_bytes(key: _BytesLike) -> PublicKey: ...
    @staticmethod
    def from_file_text(text: str) -> PublicKey:
        """Raises InvalidConfigError for anything but a valid public key file."""
    def to_file_text(self) -> str: ...
    def to_bytes(self) -> bytes: ...
    @property
    def fingerprint(self) -> str:
        """16 hexadecimal digits."""

@final
class Token:
    """A capability token: ``subject`` may sign datagrams of ``group`` through ``not_after``."""

    @staticmethod
    def issue(issuer: SigningKey, subject: PublicKey, group: str, not_after: int) -> Token: ...
    @staticmethod
    def from_bytes(data: _BytesLike) -> Token: ...
    @staticmethod
    def from_file_text(text: str) -> Token:
        """Raises InvalidConfigError for anything but a token file."""
    def to_file_text(self) -> str: ...
    def to_bytes(self) -> bytes: ...
    @property
    def subject(self) -> PublicKey: ...
    @property
    def group(self) -> str: ...
    @property
    def not_after(self) -> int:
        """Unix seconds; the token is valid through that second."""
    @property
    def issuer(self) -> str:
        """The issuer key's fingerprint, 16 hexadecimal digits."""

@final
class OpenedDatagram:
    """What a receiver's keys did with a well-formed datagram."""

    @property
    def plain(self) -> bytes | None:
        """The plain datagram, None when dropped."""
    @property
    def dropped(self) -> _DropReason | None:
        """The drop reason, None when accepted."""

class _SenderLoss(TypedDict):
    """What a channel knows of one sender (``Channel.sender_losses``)."""

    sender: str
    highest_seq: int | None
    lost: int

@final
class Channel:
    """A named channel of a Context."""

    @property
    def name(self) -> bytes: ...
    @property
    def group(self) -> str: ...
    @property
    def relayed_group(self) -> str | None: ...
    def join(self) -> None: ...
    def join_source(self, source: str) -> None: ...
    def leave(self) -> None: ...
    def send(self, data: _BytesLike, timeout: float | None = None) -> None:
        """Queues ``data`` as one message; waits for the send rate and a reliable channel's
        flow window, at most ``timeout`` seconds if given (then raises TimeoutError and queues
        nothing)."""
    def try_send(self, data: _BytesLike) -> None:
        """send() that never waits: raises TimeoutError, queueing nothing, when send() would."""
    def flush(self) -> None: ...
    def send_file(
        self, path: str | os.PathLike[str], *, passes: int | None = None, name: str | None = None
    ) -> _SentFile:
        """Sends a file to every receiver of the channel (see FileReceiver); ``passes``
        defaults to 1, ``name`` to the path's last component."""
    def recv(self, timeout: float | None = None) -> Message: ...
    def try_recv(self) -> Message | None: ...
    def fileno(self) -> int: ...
    def recv_async(self, timeout: float | None = None) -> Awaitable[Message]: ...
    def stats(self) -> Stats: ...
    def sender_losses(self) -> list[_SenderLoss]:
        """Every sender the channel tracks, by node id, with its messages never heard."""
    def set_key(self, key: ChannelKey) -> None: ...
    def add_key(self, key: ChannelKey) -> None: ...
    def remove_key(self, id: int) -> bool: ...
    def sign_with(self, key: SigningKey) -> None: ...
    def trust(self, key: PublicKey) -> None: ...
    def present(self, token: Token) -> None: ...
    def trust_issuer(self, issuer: PublicKey) -> None: ...
    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...
    def __aiter__(self) -> AsyncIterator[Message]: ...
    def __anext__(self) -> Awaitable[Message]: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

# Files to every receiver of a channel (the core's `files` module).
class _SentFile(TypedDict):
    """What ``Channel.send_file`` sent."""

    name: str
    size: int
    sha256: str
    chunk: int

class _ReceivedFile(TypedDict):
    """A file received whole, its SHA-256 checked, and named ``path``."""

    complete: Literal[True]
    name: str
    path: str
    size: int
    sha256: str
    sender: str
    resumed: int

class _PartialFile(TypedDict):
    """A file whose sender finished before all of it arrived; what arrived is kept."""

    complete: Literal[False]
    name: str
    size: int
    missing: int

class _FileStats(TypedDict):
    """What a FileReceiver saw."""

    frames: int
    other_messages: int
    malformed: int
    refused: int
    unfollowed: int
    chunks: int
    duplicate_chunks: int

@final
class FileReceiver:
    """Receives files sent with ``Channel.send_file`` into a folder that exists; does not join
    the channel. ``max_size`` defaults to no limit, ``max_transfers`` to 16."""

    def __new__(
        cls,
        dir: str | os.PathLike[str],
        *,
        max_size: int | None = None,
        max_transfers: int | None = None,
    ) -> Self: ...
    def recv(self, channel: Channel, timeout: float | None = None) -> _ReceivedFile | _PartialFile:
        """Receives until a transfer ends; raises TimeoutError when none ended in time."""
    def stats(self) -> _FileStats: ...

@final
class Context:
    """One UDP socket, one node id and any number of channels."""

    def __new__(
        cls,
        config: Config | None = None,
        *,
        profile: _Profile | None = None,
        rp: str | None = None,
        scope: _Scope | None = None,
        port: int | None = None,
        interfaces: Sequence[str] | None = None,
        hop_limit: int | None = None,
        loopback: bool | None = None,
        max_datagram_size: int | None = None,
        max_message_size: int | None = None,
        linger: float | None = None,
        packing: bool | None = None,
        queue_capacity: int | None = None,
        queue_bytes: int | None = None,
        recv_buffer: int | None = None,
        send_rate_messages: int | None = None,
        send_rate_bytes: int | None = None,
        reliable: bool | None = None,
        reassembly_timeout: float | None = None,
        reassembly_memory: int | None = None,
        stratum0: str | None = None,
        domain: str | None = None,
        dns_server: str | None = None,
        probe_timeout: float | None = None,
        probe_interval: float | None = None,
        relay_keys: Sequence[PublicKey] | None = None,
        relay_issuers: Sequence[PublicKey] | None = None,
    ) -> Self: ...
    def channel(self, name: _BytesLike) -> Channel: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def node_id(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def interfaces(self) -> list[str]: ...
    @property
    def config(self) -> Config: ...
    def stats(self) -> Stats: ...
    def reachability(self) -> Reachability | None:
        """How the context reaches the multicast core; None without a ``stratum0``."""
    def next_event(self, timeout: float | None = None) -> dict[str, Any]:
        """The next event: a dict with its ``kind`` (``path_changed``, ``relay_failover``,
        ``gateway_role``, ``messages_lost``) and its fields."""
    def try_event(self) -> dict[str, Any] | None: ...
    @property
    def events_dropped(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class MessageBatch:
    """A decoded datagram of whole messages."""

    @property
    def type(self) -> Literal["messages"]: ...
    @property
    def sender(self) -> str: ...
    @property
    def first_seq(self) -> int: ...
    @property
    def messages(self) -> list[tuple[int, bytes]]: ...

@final
class Fragment:
    """A decoded datagram that carries one piece of a large message."""

    @property
    def type(self) -> Literal["fragment"]: ...
    @property
    def sender(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def total_len(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def chunk(self) -> bytes: ...

@final
class Sequenced:
    """A decoded numbered packet of a reliable channel."""

    @property
    def type(self) -> Literal["sequenced"]: ...
    @property
    def sender(self) -> str: ...
    @property
    def packet(self) -> int: ...
    @property
    def inner(self) -> bytes:
        """The whole datagram of the channel it carries, possibly sealed or signed."""

@final
class Parity:
    """A decoded parity symbol over a block of a reliable channel's packets."""

    @property
    def type(self) -> Literal["parity"]: ...
    @property
    def sender(self) -> str: ...
    @property
    def block_start(self) -> int: ...
    @property
    def block_len(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def symbol(self) -> bytes: ...

@final
class Nack:
    """A decoded request for repair."""

    @property
    def type(self) -> Literal["nack"]: ...
    @property
    def from_(self) -> str:
        """The receiver asking (``from`` is a Python keyword)."""
    @property
    def target(self) -> str: ...
    @property
    def heard(self) -> int:
        """How far the receiver has heard the sender (exclusive): the highest packet number or
        block end it has heard of."""
    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The missing packets as (first, count) ranges."""

@final
class Status:
    """A decoded receiver's report of how far it got."""

    @property
    def type(self) -> Literal["status"]: ...
    @property
    def from_(self) -> str:
        """The receiver reporting (``from`` is a Python keyword)."""
    @property
    def target(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def position(self) -> int: ...

@final
class Manifest:
    """A decoded MANIFEST: the digests of the datagrams one signature covers."""

    @property
    def sender(self) -> str: ...
    @property
    def number(self) -> int:
        """The sender's count of manifests; a repeated copy has the same number."""
    @property
    def digests(self) -> list[bytes]:
        """DIGEST_LEN bytes each, in the order their datagrams were sent."""

@final
class ProbeReport:
    """The latest probe of native reachability through Stratum 0."""

    @property
    def stratum0(self) -> str: ...
    @property
    def answered(self) -> bool: ...
    @property
    def rtt(self) -> float | None:
        """Seconds; None when no probe was answered."""
    @property
    def native_down(self) -> bool: ...
    @property
    def native_up(self) -> bool: ...
    @property
    def observed(self) -> str | None: ...

@final
class RelayOffer:
    """A relay's offer to carry the context's channels."""

    @property
    def address(self) -> str: ...
    @property
    def rtt(self) -> float:
        """Seconds from the relay request to the offer."""
    @property
    def load(self) -> int:
        """Per mille of the relay's capacity in use."""
    @property
    def repeater(self) -> bool:
        """Whether the offer comes from an SSM repeater."""

@final
class Reachability:
    """How a context reaches the multicast core (Context.reachability())."""

    @property
    def probe(self) -> ProbeReport | None: ...
    @property
    def relay(self) -> str | None: ...
    @property
    def offers(self) -> list[RelayOffer]: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def gateway(self) -> str | None:
        """The segment's Stratum 1 gateway that carries the channels, "[address]:port"."""
    @property
    def serving(self) -> list[str]:
        """Groups of the channels this context serves as its segment's gateway."""
    @property
    def stratum0(self) -> str | None:
        """The Stratum 0 of the latest attempt (configured, from DNS or the embedded RP)."""
    @property
    def rejected_relays(self) -> int:
        """Relays refused for want of a pinned or vouched identity."""
    @property
    def held_dropped(self) -> int:
        """Datagrams sent before the path to the core was known (or while no tunnel carried
        them) whose copy for the tunnel was dropped to stay within 1 MiB: they went out
        natively only."""

@final
class ControlMessage:
    """A decoded control message: ``name`` and its type's fields (None for the others)."""

    @property
    def name(self) -> Literal[
        "probe",
        "echo",
        "beacon",
        "probe_reply",
        "relay_request",
        "cookie",
        "solicit",
        "offer",
        "hello",
        "challenge",
        "join",
        "leave",
        "data",
        "keepalive",
        "teardown",
        "rebind",
    ]: ...
    @property
    def nonce(self) -> str | None:
        """16 hexadecimal digits."""
    @property
    def beacon_nonce(self) -> str | None: ...
    @property
    def heard_beacon(self) -> bool | None: ...
    @property
    def limit(self) -> bool | None: ...
    @property
    def repeater(self) -> bool | None: ...
    @property
    def observed(self) -> str | None:
        """"[address]:port", as are node, relay and old."""
    @property
    def node(self) -> str | None: ...
    @property
    def relay(self) -> str | None: ...
    @property
    def old(self) -> str | None: ...
    @property
    def old_nonce(self) -> str | None:
        """16 hexadecimal digits."""
    @property
    def old_mac(self) -> bytes | None: ...
    @property
    def cookie(self) -> bytes | None: ...
    @property
    def mac(self) -> bytes | None: ...
    @property
    def load(self) -> int | None: ...
    @property
    def refresh_secs(self) -> int | None: ...
    @property
    def gateway(self) -> str | None:
        """GATEWAY: the announcing gateway's node id, 16 hexadecimal digits."""
    @property
    def hold_ms(self) -> int | None:
        """GATEWAY: how long the announcement stays valid, in milliseconds (0: withdrawn)."""
    @property
    def groups(self) -> list[str] | None: ...
    @property
    def group(self) -> str | None: ...
    @property
    def datagram(self) -> bytes | None: ...
    @property
    def relay_key(self) -> str | None: ...
    @property
    def voucher(self) -> bytes | None: ...
    @property
    def signature(self) -> bytes | None: ...

def group_address(
    name: _BytesLike,
    profile: _Profile = "sixcast",
    scope: _Scope = "global",
    rp: str | None = None,
) -> str: ...
def relayed_address(group: str, profile: _Profile = "sixcast", rp: str | None = None) -> str: ...
def decode_datagram(data: _BytesLike) -> MessageBatch | Fragment: ...
def decode_repair(data: _BytesLike) -> Sequenced | Parity | Nack | Status: ...
def decode_manifest(data: _BytesLike) -> Manifest: ...
def decode_control(data: _BytesLike) -> ControlMessage: ...
def control_mac(secret: _BytesLike, address: str, port: int, nonce: str) -> bytes:
    """16 bytes; ``nonce`` is 16 hexadecimal digits."""
def pack_messages(
    sender: str, first_seq: int, max_datagram: int, messages: Sequence[_BytesLike]
) -> list[bytes]: ...
def seal_datagram(
    group: str,
    plain: _BytesLike,
    channel_key: ChannelKey | None = None,
    signing_key: SigningKey | None = None,
    token: Token | None = None,
) -> bytes: ...
def open_datagram(
    group: str,
    datagram: _BytesLike,
    keys: Sequence[ChannelKey] = (),
    trusted: Sequence[PublicKey] = (),
    issuers: Sequence[PublicKey] = (),
    now: int | None = None,
) -> OpenedDatagram:
    """Raises MalformedError (with ``reason``) for a datagram that is not well formed."""
