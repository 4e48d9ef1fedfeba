"""The cheap always-on check of the UniFFI layer: the generated Python module (`sixcast_ffi`,
from the same library as Kotlin and Swift) against the shared address vectors, the error kinds
table, every errors.json case, every security.json case, and the refusals of a FileReceiver.
Needs no network and no JVM.

Run it after `bindings-uniffi/generate python`: `python3 test_uniffi_python.py` (or pytest).
"""

import ipaddress
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("SIXCAST_FFI_PYTHON", str(HERE / "generated")))
VECTORS = Path(os.environ.get("SIXCAST_VECTORS", HERE.parents[1] / "tests" / "conformance" / "vectors"))

import sixcast_ffi as ffi  # noqa: E402  (the generated module, found through sys.path above)


def load(name):
    return json.loads((VECTORS / name).read_text())


ERRORS = load("errors.json")
ADDRESSES = load("addresses.json")
EXCEPTION_NAMES = {kind["name"]: kind["uniffi"] for kind in ERRORS["kinds"]}


def name_bytes(case):
    if "name_hex" in case:
        return bytes.fromhex(case["name_hex"])
    if case.get("name_utf8") is not None:
        return case["name_utf8"].encode()
    repeat = case["name_repeat"]
    return bytes.fromhex(repeat["byte_hex"]) * repeat["count"]


def same_address(a, b):
    return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)


def raises_kind(kind, call, *args, **kwargs):
    """Calls `call` and checks it raises the SixcastError case errors.json names for `kind`."""
    expected = getattr(ffi.SixcastError, EXCEPTION_NAMES[kind])
    try:
        call(*args, **kwargs)
    except ffi.SixcastError as error:
        assert type(error) is expected, f"{call.__name__}{args}: {type(error).__name__}: {error}"
        return error
    raise AssertionError(f"{call.__name__}{args}: expected SixcastError.{expected.__name__}")


def test_every_name_maps_to_its_group_and_relayed_group():
    assert len(ADDRESSES["cases"]) >= 100
    for case in ADDRESSES["cases"]:
        profile, scope, rp = case["profile"], case["scope"], case["rp"]
        group = ffi.group_address_bytes(name_bytes(case), profile, scope, rp)
        assert same_address(group, case["address"]), case
        if case.get("name_utf8") is not None:
            assert ffi.group_address(case["name_utf8"], profile, scope, rp) == group
        if case["relayed_address"] is None:
            raises_kind("Unsupported", ffi.relayed_address, group, profile, rp)
        else:
            assert same_address(ffi.relayed_address(group, profile, rp), case["relayed_address"]), case


def test_every_invalid_address_input_fails_with_its_kind():
    for case in ADDRESSES["invalid"]:
        raises_kind(
            case["error"], ffi.group_address_bytes, name_bytes(case), case["profile"], case["scope"], case["rp"]
        )


def test_there_is_one_error_class_per_kind():
    cases = {
        name
        for name, value in vars(ffi.SixcastError).items()
        if isinstance(value, type) and issubclass(value, ffi.SixcastError)
    }
    assert cases == set(EXCEPTION_NAMES.values()), cases


def test_every_kind_arrives_as_its_own_class_with_its_message():
    for kind in EXCEPTION_NAMES:
        error = raises_kind(kind, ffi.raise_error_kind, kind)
        assert kind in str(error), error
    raises_kind("InvalidConfig", ffi.raise_error_kind, "NoSuchKind")


def run_error_case(case):
    """Performs an errors.json `op` through the public API."""
    op = case["op"]
    if op == "group_address":
        ffi.group_address_bytes(name_bytes(case), case["profile"], case["scope"], case["rp"])
    elif op == "parse_profile":
        ffi.validate_config(ffi.Config(profile=case["profile"], rp=case["rp"]))
    elif op == "parse_scope":
        ffi.validate_config(ffi.Config(scope=case["scope"]))
    elif op == "config":
        ffi.validate_config(ffi.Config(**case["set"]))
    elif op == "open_context":
        # Refused before a socket exists: nothing touches the network.
        ffi.Context(ffi.Config(**case["set"])).close()
    elif op == "decode":
        ffi.decode_datagram(bytes.fromhex(case["hex"]))
    elif op == "pack":
        messages = [bytes.fromhex(message) for message in case["messages_hex"]]
        ffi.pack_messages("0000000000000001", 0, case["max_datagram"], messages)
    else:
        raise AssertionError(f"errors.json has an op this check does not know: {op}")


def test_every_errors_case_fails_with_its_kind_or_succeeds():
    for case in ERRORS["cases"]:
        if case["error"] is None:
            run_error_case(case)
        else:
            raises_kind(case["error"], run_error_case, case)


def test_the_record_defaults_are_the_core_defaults():
    assert ffi.Config() == ffi.default_config()
    ffi.validate_config(ffi.Config())


def test_probe_interval_round_trips_and_must_be_at_least_the_timeout():
    assert ffi.Config().probe_interval_ms == 30000
    config = ffi.Config(probe_timeout_ms=1500, probe_interval_ms=45250)
    assert config.probe_interval_ms == 45250
    ffi.validate_config(config)
    error = raises_kind(
        "InvalidConfig",
        ffi.validate_config,
        ffi.Config(probe_timeout_ms=3000, probe_interval_ms=2000),
    )
    assert "probe_interval" in str(error), str(error)


CONTROL = load("control.json")


def control_received(case):
    data = bytes.fromhex(case["datagram"])
    repeat = case.get("datagram_repeat")
    return data + bytes.fromhex(repeat["byte_hex"]) * repeat["count"] if repeat else data


def test_every_control_case_decodes_or_is_malformed_with_its_reason():
    for case in CONTROL["encode"] + CONTROL["decode"]:
        expected = case.get("message") or case.get("decoded")
        if expected is None:
            error = raises_kind(case["error"], ffi.decode_control, control_received(case))
            assert f"({case['reason']})" in str(error), (case["name"], str(error))
            continue
        message = ffi.decode_control(control_received(case))
        assert message.name == expected["type"], case["name"]
        for key, value in expected.items():
            if key == "type":
                continue
            actual = getattr(message, key)
            if isinstance(value, dict):
                address, _, port = actual.rpartition(":")
                assert same_address(address.strip("[]"), value["ip"]), (case["name"], key)
                assert int(port) == value["port"], (case["name"], key)
            elif key in ("cookie", "mac", "old_mac", "datagram", "voucher", "signature"):
                assert bytes(actual).hex() == value, (case["name"], key)
            elif key == "groups":
                assert len(actual) == len(value), (case["name"], key)
                assert all(map(same_address, actual, value)), (case["name"], key)
            elif key == "group":
                assert same_address(actual, value), (case["name"], key)
            else:
                assert actual == value, (case["name"], key)


def test_every_control_mac_matches():
    for case in CONTROL["mac"]:
        mac = ffi.control_mac(bytes.fromhex(case["secret"]), case["ip"], case["port"], case["nonce"])
        assert bytes(mac).hex() == case["mac"], case["name"]


SECURITY = load("security.json")
KEY_READERS = {
    "channel": ffi.ChannelKey.from_file_text,
    "signing": ffi.SigningKey.from_file_text,
    "public": ffi.PublicKey.from_file_text,
    "token": ffi.Token.from_file_text,
}


def test_every_key_file_reads_and_writes_back():
    for entry in SECURITY["keys"]:
        key = KEY_READERS[entry["kind"]](entry["file"])
        assert key.to_file_text() == entry["file"], entry["name"]
        if entry["kind"] == "channel":
            assert key.id() == int(entry["id"], 16), entry["name"]
            again = ffi.ChannelKey.from_bytes(key.id(), bytes.fromhex(entry["secret"]))
            assert again.to_file_text() == entry["file"], entry["name"]
        elif entry["kind"] == "signing":
            assert bytes(key.public_key().to_bytes()).hex() == entry["public"], entry["name"]
            again = ffi.SigningKey.from_seed(bytes.fromhex(entry["seed"]))
            assert again.to_file_text() == entry["file"], entry["name"]
        else:
            assert key.fingerprint() == entry["fingerprint"], entry["name"]
            assert ffi.PublicKey.from_bytes(key.to_bytes()).to_file_text() == entry["file"]


def test_every_token_file_reads_writes_back_and_is_issued_again():
    signing_keys = [
        ffi.SigningKey.from_file_text(entry["file"])
        for entry in SECURITY["keys"]
        if entry["kind"] == "signing"
    ]
    assert SECURITY["tokens"]
    for entry in SECURITY["tokens"]:
        name = f"token until {entry['not_after']}"
        token = ffi.Token.from_file_text(entry["file"])
        assert token.to_file_text() == entry["file"], name
        assert bytes(token.subject().to_bytes()).hex() == entry["subject"], name
        assert token.group() == entry["group"], name
        assert token.not_after() == entry["not_after"], name
        assert token.issuer() == entry["issuer"], name
        assert ffi.Token.from_bytes(token.to_bytes()).to_file_text() == entry["file"]
        (issuer,) = [key for key in signing_keys if key.public_key().fingerprint() == entry["issuer"]]
        issued = ffi.Token.issue(issuer, token.subject(), entry["group"], entry["not_after"])
        assert issued.to_file_text() == entry["file"], name


def test_every_invalid_key_file_fails_with_its_kind():
    for case in SECURITY["invalid_key_files"]:
        raises_kind(case["error"], KEY_READERS[case["kind"]], case["text"])
    raises_kind("InvalidConfig", ffi.ChannelKey.from_bytes, 1, bytes(31))


def test_every_seal_case_gives_its_bytes_and_opens_back():
    for case in SECURITY["seal"]:
        channel_key = case["channel_key"] and ffi.ChannelKey.from_file_text(case["channel_key"])
        signing_key = case["signing_key"] and ffi.SigningKey.from_file_text(case["signing_key"])
        token = case["token"] and ffi.Token.from_file_text(case["token"])
        plain = bytes.fromhex(case["plain"])
        sealed = ffi.seal_datagram(
            case["group"], plain, channel_key or None, signing_key or None, token or None
        )
        assert bytes(sealed).hex() == case["protected"], case["name"]
        keys = [channel_key] if channel_key else []
        trusted = [signing_key.public_key()] if signing_key else []
        now = token.not_after() if token else None
        opened = ffi.open_datagram(case["group"], sealed, keys, trusted, [], now)
        assert opened == ffi.OpenedDatagram.ACCEPTED(plain), case["name"]


def test_every_open_case_opens_or_is_refused_with_its_reason():
    reasons = ffi.drop_reasons()
    for case in SECURITY["open"]:
        keys = [ffi.ChannelKey.from_file_text(text) for text in case["keys"]]
        trusted = [ffi.PublicKey.from_file_text(text) for text in case["trusted"]]
        issuers = [ffi.PublicKey.from_file_text(text) for text in case["issuers"]]
        arguments = (case["group"], bytes.fromhex(case["datagram"]), keys, trusted, issuers, case["now"])
        if case.get("kind") == "malformed":
            error = raises_kind("Malformed", ffi.open_datagram, *arguments)
            assert f"({case['reason']})" in str(error), (case["name"], str(error))
            continue
        opened = ffi.open_datagram(*arguments)
        if "plain" in case:
            assert opened == ffi.OpenedDatagram.ACCEPTED(bytes.fromhex(case["plain"])), case["name"]
            ffi.decode_datagram(opened.plain)
        else:
            assert case["reason"] in reasons, case["name"]
            assert opened == ffi.OpenedDatagram.DROPPED(case["reason"]), case["name"]


def test_a_file_receiver_needs_a_folder_that_exists():
    with tempfile.TemporaryDirectory() as folder:
        raises_kind("InvalidConfig", ffi.FileReceiver, os.path.join(folder, "missing"))
        path = os.path.join(folder, "a-file")
        Path(path).write_bytes(b"x")
        raises_kind("InvalidConfig", ffi.FileReceiver, path, 10, 1)
        receiver = ffi.FileReceiver(folder)
        stats = receiver.stats()
        assert stats == ffi.FileStats(
            frames=0, other_messages=0, malformed=0, refused=0, unfollowed=0, chunks=0, duplicate_chunks=0
        ), stats


def main():
    tests = [value for name, value in sorted(globals().items()) if name.startswith("test_")]
    failed = 0
    for test in tests:
        try:
            test()
        except Exception:  # noqa: BLE001  (report every failing check, then exit non-zero)
            failed += 1
            print(f"FAIL {test.__name__}")
            traceback.print_exc()
    print(f"uniffi-python: {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
