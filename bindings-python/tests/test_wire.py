"""Tests of the datagram codec (the core's `wire` module) against the shared vectors in
tests/conformance/vectors/wire.json."""

import pytest
import sixcast
from conftest import case_id, load_vectors

WIRE = load_vectors("wire.json")
VALID = [case for case in WIRE["decode"] if "decoded" in case]
INVALID = [case for case in WIRE["decode"] if "error" in case]


@pytest.mark.parametrize("case", VALID, ids=case_id)
def test_decode_valid_datagram(case):
    datagram = sixcast.decode_datagram(bytes.fromhex(case["datagram"]))
    expected = case["decoded"]
    assert datagram.type == expected["type"]
    assert datagram.sender == expected["sender"]
    if expected["type"] == "messages":
        assert isinstance(datagram, sixcast.MessageBatch)
        assert datagram.first_seq == expected["first_seq"]
        assert datagram.messages == [
            (message["seq"], bytes.fromhex(message["payload"])) for message in expected["messages"]
        ]
    else:
        assert isinstance(datagram, sixcast.Fragment)
        for field in ("seq", "total_len", "offset", "index", "count"):
            assert getattr(datagram, field) == expected[field], field
        assert datagram.chunk == bytes.fromhex(expected["chunk"])


@pytest.mark.parametrize("case", INVALID, ids=case_id)
def test_decode_invalid_datagram(case):
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_datagram(bytes.fromhex(case["datagram"]))
    assert raised.value.kind == case["error"] == "Malformed"
    assert raised.value.reason == case["reason"]
    assert case["reason"] in raised.value.message


@pytest.mark.parametrize("case", WIRE["encode"], ids=case_id)
def test_pack_messages(case):
    messages = [bytes.fromhex(message) for message in case["messages"]]
    datagrams = sixcast.pack_messages(
        case["sender"], case["first_seq"], case["max_datagram"], messages
    )
    assert [datagram.hex() for datagram in datagrams] == case["datagrams"]


@pytest.mark.parametrize("case", WIRE["encode"], ids=case_id)
def test_packed_datagrams_decode_to_the_messages(case):
    received = {}
    for datagram in case["datagrams"]:
        decoded = sixcast.decode_datagram(bytes.fromhex(datagram))
        assert decoded.sender == case["sender"]
        if decoded.type == "messages":
            received.update(decoded.messages)
        else:
            pieces = received.setdefault(decoded.seq, bytearray(decoded.total_len))
            pieces[decoded.offset : decoded.offset + len(decoded.chunk)] = decoded.chunk
    expected = {
        case["first_seq"] + index: bytes.fromhex(message)
        for index, message in enumerate(case["messages"])
    }
    assert {seq: bytes(payload) for seq, payload in received.items()} == expected


def test_constants():
    constants = WIRE["constants"]
    assert sixcast.MAGIC == bytes.fromhex(constants["magic"])
    assert sixcast.PROTOCOL_VERSION == constants["version"]
    assert sixcast.HEADER_LEN == constants["header_len"]
    assert sixcast.FRAGMENT_HEADER_LEN == constants["fragment_header_len"]
    assert sixcast.MIN_DATAGRAM_SIZE == constants["min_datagram_size"]
    assert sixcast.DEFAULT_DATAGRAM_SIZE == constants["default_datagram_size"]
    assert sixcast.MAX_DATAGRAM_SIZE == constants["max_datagram_size"]
    assert sixcast.DEFAULT_MAX_MESSAGE_SIZE == constants["default_max_message_size"]
    assert sixcast.MAX_MESSAGE_SIZE_LIMIT == constants["max_message_size_limit"]


def test_pack_accepts_text_and_any_bytes_like_message():
    as_bytes = sixcast.pack_messages("0123456789abcdef", 0, 1232, [b"hi", b"there", b"!"])
    mixed = sixcast.pack_messages(
        "0123456789abcdef", 0, 1232, ["hi", bytearray(b"there"), memoryview(b"!")]
    )
    assert mixed == as_bytes


def test_pack_rejects_a_sender_that_is_not_16_hex_digits():
    with pytest.raises(sixcast.InvalidConfigError, match="16 hexadecimal digits"):
        sixcast.pack_messages("12", 0, 1232, [b"x"])


def test_reprs_are_short():
    batch = sixcast.decode_datagram(sixcast.pack_messages("0000000000000001", 7, 1232, [b"x"])[0])
    assert (
        repr(batch) == "MessageBatch(sender='0000000000000001', first_seq=7, messages=<1 message>)"
    )
    fragment = sixcast.decode_datagram(
        sixcast.pack_messages("0000000000000001", 0, 128, [bytes(200)])[0]
    )
    assert repr(fragment).startswith("Fragment(sender='0000000000000001', seq=0, total_len=200")
