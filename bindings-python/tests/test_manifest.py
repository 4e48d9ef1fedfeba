"""Tests of the codec of MANIFEST datagrams (the core's `wire::manifest` module) against the
shared vectors in tests/conformance/vectors/manifest.json."""

import pytest
import sixcast
from conftest import case_id, load_vectors

MANIFEST = load_vectors("manifest.json")
VALID = [case for case in MANIFEST["decode"] if "reason" not in case]
INVALID = [case for case in MANIFEST["decode"] if "reason" in case]


def as_vector(decoded):
    """A decoded manifest in the form of the vectors' valid cases: digests as hex."""
    return {
        "sender": decoded.sender,
        "number": decoded.number,
        "digests": [digest.hex() for digest in decoded.digests],
    }


def expected(case):
    """The fields of a valid case that a decoded manifest must have."""
    return {field: case[field] for field in ("sender", "number", "digests")}


def test_the_vectors_have_valid_and_invalid_cases():
    assert VALID
    assert INVALID


@pytest.mark.parametrize("case", VALID, ids=case_id)
def test_decode_valid_manifest(case):
    decoded = sixcast.decode_manifest(bytes.fromhex(case["manifest"]))
    assert type(decoded) is sixcast.Manifest
    assert as_vector(decoded) == expected(case)
    assert all(type(digest) is bytes for digest in decoded.digests)
    assert all(len(digest) == sixcast.DIGEST_LEN for digest in decoded.digests)


@pytest.mark.parametrize("case", INVALID, ids=case_id)
def test_decode_invalid_manifest(case):
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_manifest(bytes.fromhex(case["manifest"]))
    assert raised.value.kind == "Malformed"
    assert raised.value.reason == case["reason"]
    assert case["reason"] in raised.value.message


def test_decode_manifest_accepts_any_bytes_like_datagram():
    datagram = bytes.fromhex(VALID[0]["manifest"])
    expected_fields = as_vector(sixcast.decode_manifest(datagram))
    assert as_vector(sixcast.decode_manifest(bytearray(datagram))) == expected_fields
    assert as_vector(sixcast.decode_manifest(memoryview(datagram))) == expected_fields
    with pytest.raises(TypeError, match="data must be str or a bytes-like object"):
        sixcast.decode_manifest(3)


def test_datagrams_of_the_other_layer_are_malformed_here():
    message = sixcast.pack_messages("0000000000000001", 0, 1232, [b"x"])[0]
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_manifest(message)
    assert raised.value.reason == "unknown_type"


def test_reprs_are_short():
    for case in VALID:
        count = len(case["digests"])
        text = repr(sixcast.decode_manifest(bytes.fromhex(case["manifest"])))
        expected_text = (
            f"Manifest(sender='{case['sender']}', number={case['number']}, "
            f"digests=<{count} digest{'' if count == 1 else 's'}>)"
        )
        assert text == expected_text, case["name"]


def test_constants():
    constants = MANIFEST["constants"]
    assert sixcast.FLAG_COVERED == constants["flag_covered"]
    assert sixcast.TYPE_MANIFEST == constants["type_manifest"]
    assert sixcast.DIGEST_LEN == constants["digest_len"]
    assert sixcast.MAX_DIGESTS == constants["max_digests"]
    assert sixcast.DIGEST_CONTEXT == constants["digest_context"]
