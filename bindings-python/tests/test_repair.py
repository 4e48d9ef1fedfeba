"""Tests of the codec of reliable channels' datagrams (the core's `wire::repair` module) against
the shared vectors in tests/conformance/vectors/repair.json."""

import pytest
import sixcast
from conftest import case_id, load_vectors

REPAIR = load_vectors("repair.json")
VALID = [case for case in REPAIR["decode"] if "decoded" in case]
INVALID = [case for case in REPAIR["decode"] if "error" in case]
CLASSES = {
    "sequenced": sixcast.Sequenced,
    "parity": sixcast.Parity,
    "nack": sixcast.Nack,
    "status": sixcast.Status,
}


def as_vector(decoded):
    """A decoded datagram in the form of the vectors' `decoded` objects: bytes as hex, ranges
    as lists, and `from_` as `from`."""
    if decoded.type == "sequenced":
        fields = {"sender": decoded.sender, "packet": decoded.packet, "inner": decoded.inner.hex()}
    elif decoded.type == "parity":
        fields = {
            "sender": decoded.sender,
            "block_start": decoded.block_start,
            "block_len": decoded.block_len,
            "index": decoded.index,
            "symbol": decoded.symbol.hex(),
        }
    elif decoded.type == "nack":
        fields = {
            "from": decoded.from_,
            "target": decoded.target,
            "heard": decoded.heard,
            "ranges": [list(item) for item in decoded.ranges],
        }
    else:
        fields = {
            "from": decoded.from_,
            "target": decoded.target,
            "group": decoded.group,
            "position": decoded.position,
        }
    return {"type": decoded.type, **fields}


def test_the_vectors_have_every_type_and_some_invalid_cases():
    assert {case["decoded"]["type"] for case in VALID} == set(CLASSES)
    assert INVALID


@pytest.mark.parametrize("case", VALID, ids=case_id)
def test_decode_valid_repair_datagram(case):
    decoded = sixcast.decode_repair(bytes.fromhex(case["datagram"]))
    assert type(decoded) is CLASSES[case["decoded"]["type"]]
    assert as_vector(decoded) == case["decoded"]


@pytest.mark.parametrize("case", INVALID, ids=case_id)
def test_decode_invalid_repair_datagram(case):
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_repair(bytes.fromhex(case["datagram"]))
    assert raised.value.kind == case["error"] == "Malformed"
    assert raised.value.reason == case["reason"]
    assert case["reason"] in raised.value.message


@pytest.mark.parametrize("case", REPAIR["parity"], ids=case_id)
def test_a_senders_parity_decodes_as_its_block(case):
    # A symbol is as long as the longest packet plus its 2-byte length, rounded up to even.
    longest = max(len(bytes.fromhex(packet)) for packet in case["packets"])
    symbol_len = (longest + 2 + 1) // 2 * 2
    assert case["parity"]
    for index, datagram in enumerate(case["parity"]):
        parity = sixcast.decode_repair(bytes.fromhex(datagram))
        assert isinstance(parity, sixcast.Parity)
        assert parity.type == "parity"
        assert parity.sender == case["sender"]
        assert parity.block_start == 0
        assert parity.block_len == case["block_len"]
        assert parity.index == index
        assert len(parity.symbol) == symbol_len


def test_decode_repair_accepts_any_bytes_like_datagram():
    datagram = bytes.fromhex(VALID[0]["datagram"])
    expected = as_vector(sixcast.decode_repair(datagram))
    assert as_vector(sixcast.decode_repair(bytearray(datagram))) == expected
    assert as_vector(sixcast.decode_repair(memoryview(datagram))) == expected
    with pytest.raises(TypeError, match="data must be str or a bytes-like object"):
        sixcast.decode_repair(3)


def test_datagrams_of_the_other_layer_are_malformed_here():
    message = sixcast.pack_messages("0000000000000001", 0, 1232, [b"x"])[0]
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_repair(message)
    assert raised.value.reason == "unknown_type"


def test_reprs_are_short():
    for case in VALID:
        decoded = case["decoded"]
        text = repr(sixcast.decode_repair(bytes.fromhex(case["datagram"])))
        if decoded["type"] == "sequenced":
            expected = (
                f"Sequenced(sender='{decoded['sender']}', packet={decoded['packet']}, "
                f"inner=<{len(decoded['inner']) // 2} bytes>)"
            )
        elif decoded["type"] == "parity":
            expected = (
                f"Parity(sender='{decoded['sender']}', block_start={decoded['block_start']}, "
                f"block_len={decoded['block_len']}, index={decoded['index']}, "
                f"symbol=<{len(decoded['symbol']) // 2} bytes>)"
            )
        elif decoded["type"] == "nack":
            count = len(decoded["ranges"])
            expected = (
                f"Nack(from_='{decoded['from']}', target='{decoded['target']}', "
                f"heard={decoded['heard']}, ranges=<{count} range{'' if count == 1 else 's'}>)"
            )
        else:
            expected = (
                f"Status(from_='{decoded['from']}', target='{decoded['target']}', "
                f"group='{decoded['group']}', position={decoded['position']})"
            )
        assert text == expected, case["name"]
