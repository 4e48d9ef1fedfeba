"""Tests of the exception classes (the core's `error` module) and of the shared error vectors
in tests/conformance/vectors/errors.json."""

import builtins
import pickle

import pytest
import sixcast
from conftest import case_id, case_name, load_vectors

ERRORS = load_vectors("errors.json")
KINDS = ERRORS["kinds"]
CLASS_NAMES = {kind["name"]: kind["python"] for kind in KINDS}


def config_with(changes):
    """A Config with the vector's `set` fields; `*_ms` fields are milliseconds."""
    fields = {}
    for name, value in changes.items():
        if name.endswith("_ms"):
            fields[name[: -len("_ms")]] = value / 1000
        else:
            fields[name] = value
    return sixcast.Config(**fields)


def run_op(case):
    """Performs a case's `op` through the public API."""
    op = case["op"]
    if op == "group_address":
        sixcast.group_address(
            case_name(case), profile=case["profile"], scope=case["scope"], rp=case["rp"]
        )
    elif op == "parse_profile":
        sixcast.Config(profile=case["profile"], rp=case["rp"])
    elif op == "parse_scope":
        sixcast.Config(scope=case["scope"])
    elif op == "config":
        config_with(case["set"]).validate()
    elif op == "open_context":
        # Only failing cases exist: they fail before any socket is bound, so they are safe
        # outside a namespace world. A succeeding one would open a socket on this host.
        assert case["error"] is not None, "an open_context case that succeeds needs a world"
        sixcast.Context(config_with(case["set"])).close()
    elif op == "decode":
        sixcast.decode_datagram(bytes.fromhex(case["hex"]))
    elif op == "pack":
        messages = [bytes.fromhex(message) for message in case["messages_hex"]]
        sixcast.pack_messages("0000000000000001", 0, case["max_datagram"], messages)
    else:
        pytest.fail(f"errors.json has an op this runner does not know: {op}")


@pytest.mark.parametrize("case", ERRORS["cases"], ids=case_id)
def test_error_case(case):
    if case["error"] is None:
        run_op(case)
        return
    expected = getattr(sixcast, CLASS_NAMES[case["error"]])
    with pytest.raises(sixcast.Error) as raised:
        run_op(case)
    assert type(raised.value) is expected
    assert raised.value.kind == case["error"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind["name"])
def test_every_kind_has_its_class(kind):
    cls = getattr(sixcast, kind["python"])
    assert issubclass(cls, sixcast.Error)
    assert cls is not sixcast.Error
    assert cls.kind == kind["name"]
    assert cls.__module__ == "sixcast"
    assert cls.__name__ == kind["python"]
    assert cls.__doc__


def test_classes_are_distinct_and_none_is_missing_from_the_vectors():
    classes = [getattr(sixcast, kind["python"]) for kind in KINDS]
    assert len(set(classes)) == len(classes)
    exported = {
        name
        for name in sixcast.__all__
        if isinstance(getattr(sixcast, name), type)
        and issubclass(getattr(sixcast, name), sixcast.Error)
        and getattr(sixcast, name) is not sixcast.Error
    }
    assert exported == set(CLASS_NAMES.values())


def test_base_class():
    assert issubclass(sixcast.Error, Exception)
    assert sixcast.Error.kind is None
    assert sixcast.Error.__module__ == "sixcast"


def test_timeout_error_is_also_the_builtin_timeout_error():
    assert issubclass(sixcast.TimeoutError, builtins.TimeoutError)
    assert sixcast.TimeoutError is not builtins.TimeoutError


def test_io_error_is_also_an_os_error():
    assert issubclass(sixcast.IoError, OSError)


def test_other_kinds_are_not_os_errors():
    for kind in KINDS:
        if kind["name"] not in ("Timeout", "Io"):
            assert not issubclass(getattr(sixcast, kind["python"]), OSError), kind["name"]


def test_raised_error_carries_kind_and_message():
    with pytest.raises(sixcast.InvalidConfigError) as raised:
        sixcast.Config(scope="galaxy")
    err = raised.value
    assert err.kind == "InvalidConfig"
    assert "galaxy" in err.message
    assert str(err) == err.message


def test_raised_error_survives_pickling():
    with pytest.raises(sixcast.MalformedError) as raised:
        sixcast.decode_datagram(b"")
    copy = pickle.loads(pickle.dumps(raised.value))
    assert type(copy) is sixcast.MalformedError
    assert (copy.kind, copy.message, copy.reason) == (
        "Malformed",
        raised.value.message,
        "truncated",
    )
