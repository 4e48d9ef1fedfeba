"""Tests of the addressing functions (the core's `addr` module) against the shared vectors in
tests/conformance/vectors/addresses.json."""

import ipaddress

import pytest
import sixcast
from conftest import case_id, case_name, load_vectors

ADDRESSES = load_vectors("addresses.json")
ERROR_CLASSES = {kind["name"]: kind["python"] for kind in load_vectors("errors.json")["kinds"]}


def same_address(actual, expected):
    """Addresses are compared as 16-byte values, not as text (RFC 5952 allows one spelling, but
    a binding need not rely on its formatter)."""
    return ipaddress.IPv6Address(actual) == ipaddress.IPv6Address(expected)


@pytest.mark.parametrize("case", ADDRESSES["cases"], ids=case_id)
def test_group_address(case):
    address = sixcast.group_address(
        case_name(case), profile=case["profile"], scope=case["scope"], rp=case["rp"]
    )
    assert same_address(address, case["address"])
    if case.get("name_utf8") is not None:
        as_text = sixcast.group_address(
            case["name_utf8"], profile=case["profile"], scope=case["scope"], rp=case["rp"]
        )
        assert same_address(as_text, case["address"])


@pytest.mark.parametrize("case", ADDRESSES["cases"], ids=case_id)
def test_relayed_address(case):
    relay = lambda: sixcast.relayed_address(case["address"], profile=case["profile"], rp=case["rp"])  # noqa: E731
    if case["relayed_address"] is None:
        with pytest.raises(sixcast.UnsupportedError):
            relay()
    else:
        assert same_address(relay(), case["relayed_address"])


@pytest.mark.parametrize("case", ADDRESSES["cases"], ids=case_id)
def test_default_port_of_profile(case):
    config = sixcast.Config(profile=case["profile"], rp=case["rp"])
    assert config.port is None
    assert config.effective_port == case["port"]


@pytest.mark.parametrize("case", ADDRESSES["invalid"], ids=case_id)
def test_invalid_inputs_raise_their_kind(case):
    expected = getattr(sixcast, ERROR_CLASSES[case["error"]])
    with pytest.raises(expected) as raised:
        sixcast.group_address(
            case_name(case), profile=case["profile"], scope=case["scope"], rp=case["rp"]
        )
    assert raised.value.kind == case["error"]


def test_constants():
    constants = ADDRESSES["constants"]
    assert sixcast.DEFAULT_PORT == constants["default_port"]
    assert sixcast.LIBRECAST_PORT == constants["librecast_port"]
    assert sixcast.MAX_NAME_LEN == constants["max_name_len"]
    assert sixcast.FLAG_RELAYED == constants["flag_relayed"]


def test_names_may_be_any_bytes_like_object():
    expected = sixcast.group_address(b"webservers")
    for name in ("webservers", bytearray(b"webservers"), memoryview(b"webservers")):
        assert sixcast.group_address(name) == expected


def test_a_name_of_another_type_is_a_type_error():
    with pytest.raises(TypeError, match="name must be str or a bytes-like object, not int"):
        sixcast.group_address(42)


def test_relayed_address_of_a_non_address_is_an_invalid_address_error():
    with pytest.raises(sixcast.InvalidAddressError, match="not an IPv6 address"):
        sixcast.relayed_address("webservers")


def test_relayed_address_of_another_profiles_group_is_an_invalid_address_error():
    ssm_group = sixcast.group_address("webservers", profile="ssm")
    with pytest.raises(sixcast.InvalidAddressError):
        sixcast.relayed_address(ssm_group, profile="sixcast")
