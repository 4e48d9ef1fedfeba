"""Tests of the control-message codec (the core's `wire::control` module) against the shared
vectors in tests/conformance/vectors/control.json."""

import ipaddress

import pytest
import sixcast
from conftest import case_id, load_vectors

CONTROL = load_vectors("control.json")
VALID = [case for case in CONTROL["decode"] if "decoded" in case]
INVALID = [case for case in CONTROL["decode"] if "error" in case]
DECODES = CONTROL["encode"] + VALID
FIELDS = (
    "nonce",
    "beacon_nonce",
    "heard_beacon",
    "limit",
    "repeater",
    "observed",
    "node",
    "relay",
    "old",
    "old_nonce",
    "old_mac",
    "cookie",
    "mac",
    "load",
    "refresh_secs",
    "gateway",
    "hold_ms",
    "groups",
    "group",
    "datagram",
    "relay_key",
    "voucher",
    "signature",
)


def received_bytes(case):
    data = bytes.fromhex(case["datagram"])
    if "datagram_repeat" in case:
        repeat = case["datagram_repeat"]
        data += bytes.fromhex(repeat["byte_hex"]) * repeat["count"]
    return data


def socket_address(text):
    """"[address]:port" as (IPv6Address, port)."""
    address, _, port = text.rpartition(":")
    assert address.startswith("[") and address.endswith("]"), text
    return ipaddress.IPv6Address(address[1:-1]), int(port)


def expected_field(name, value):
    if name in ("observed", "node", "relay", "old"):
        return ipaddress.IPv6Address(value["ip"]), value["port"]
    if name in ("cookie", "mac", "old_mac", "datagram", "voucher", "signature"):
        return bytes.fromhex(value)
    if name == "groups":
        return [ipaddress.IPv6Address(group) for group in value]
    if name == "group":
        return ipaddress.IPv6Address(value)
    return value


def actual_field(name, value):
    if name in ("observed", "node", "relay", "old"):
        return socket_address(value)
    if name == "groups":
        return [ipaddress.IPv6Address(group) for group in value]
    if name == "group":
        return ipaddress.IPv6Address(value)
    return value


@pytest.mark.parametrize("case", DECODES, ids=case_id)
def test_decode_control(case):
    expected = case.get("message") or case["decoded"]
    message = sixcast.decode_control(received_bytes(case))
    assert isinstance(message, sixcast.ControlMessage)
    assert message.name == expected["type"]
    for name in FIELDS:
        value = getattr(message, name)
        if name in expected:
            assert actual_field(name, value) == expected_field(name, expected[name]), name
        else:
            assert value is None, name


def test_every_field_is_covered():
    named = {key for case in DECODES for key in (case.get("message") or case["decoded"])}
    assert named - {"type"} == set(FIELDS)


@pytest.mark.parametrize("case", INVALID, ids=case_id)
def test_decode_control_rejects(case):
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_control(received_bytes(case))
    assert raised.value.kind == case["error"] == "Malformed"
    assert raised.value.reason == case["reason"]
    assert case["reason"] in raised.value.message


@pytest.mark.parametrize("case", CONTROL["mac"], ids=case_id)
def test_control_mac(case):
    mac = sixcast.control_mac(
        bytes.fromhex(case["secret"]), case["ip"], case["port"], case["nonce"]
    )
    assert mac == bytes.fromhex(case["mac"])


def test_control_mac_rejects_bad_arguments():
    secret = bytes(32)
    with pytest.raises(sixcast.InvalidConfigError, match="secret"):
        sixcast.control_mac(bytes(31), "2001:db8::7", 1, "0102030405060708")
    with pytest.raises(sixcast.InvalidAddressError):
        sixcast.control_mac(secret, "2001:db8::zz", 1, "0102030405060708")
    for nonce in ("0102", "+102030405060708", "010203040506070g", "01020304050607080"):
        with pytest.raises(sixcast.InvalidConfigError, match="nonce"):
            sixcast.control_mac(secret, "2001:db8::7", 1, nonce)


def test_constants():
    constants = CONTROL["constants"]
    assert sixcast.CONTROL_MAGIC == bytes.fromhex(constants["magic"])
    assert sixcast.CONTROL_MAC_LEN == constants["mac_len"]
    assert sixcast.CONTROL_SECRET_LEN == constants["secret_len"]
