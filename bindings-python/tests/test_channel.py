"""Behaviour of Context, Channel and Message (the core's `channel` module) with real multicast:
processes in the hosts of a sixcast-netlab world (never on this machine's own interfaces) run
world_probe.py, which reports what it observed, and the tests judge it."""

import errno
import json
import pathlib
import re
import signal
import tempfile
import time

import pytest
import sixcast
from conftest import TESTS
from world_probe import describe_payload, pattern

PAYLOADS = [
    ("text:hello", b"hello"),
    ("empty", b""),
    ("pattern:1048576", pattern(1 << 20)),
    ("text:grüße", "grüße".encode()),
]


def json_lines(lines):
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("mode", ["recv", "iterate", "async"])
def test_two_hosts_exchange_messages(world, mode):
    channel = f"exchange-{mode}"
    receiver = world.start("h2", "world_probe.py", "recv", channel, len(PAYLOADS), 20, mode)
    receiver.wait_ready()
    code, lines, stderr = world.run("h1", "world_probe.py", "send", channel, *dict(PAYLOADS))
    assert code == 0, stderr
    (sent,) = json_lines(lines)
    code, lines, stderr = receiver.finish()
    assert code == 0, stderr
    records = json_lines(lines)
    messages = [record["message"] for record in records if "message" in record]
    summary = records[-1]["summary"]

    assert len(messages) == len(PAYLOADS)
    sender_host, receiver_host = world.hosts["h1"], world.hosts["h2"]
    for seq, (message, (_, payload)) in enumerate(zip(messages, PAYLOADS)):
        assert message["payload"] == describe_payload(payload)
        assert message["bytes_equal_payload"]
        assert message["seq"] == seq
        assert message["sender"] == sent["node_id"]
        assert re.fullmatch("[0-9a-f]{16}", message["sender"])
        assert message["source"] == sender_host["addr"]
        assert message["source_port"] == sent["port"] == sixcast.DEFAULT_PORT
        assert message["group"] == sixcast.group_address(channel)
        assert message["interface_name"] == receiver_host["ifname"]
        assert message["interface"] == receiver_host["ifindex"]
        assert message["relayed"] is False
        assert message["path"] == "native"
    assert messages[2]["repr"].startswith("Message(payload=<1048576 bytes>, source=")

    total = sum(len(payload) for _, payload in PAYLOADS)
    assert sent["stats"]["messages_sent"] == len(PAYLOADS)
    assert sent["stats"]["bytes_sent"] == total
    assert summary["stats"]["messages_received"] == len(PAYLOADS)
    assert summary["stats"]["bytes_received"] == total
    assert summary["stats"]["lost"] == 0
    assert summary["context_stats"]["messages_received"] == len(PAYLOADS)
    if mode == "iterate":
        assert summary["after_close"] == []
        assert summary["ended_after"] < 2


def test_recv_timeout_raises_timeout_error(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "timeout")
    assert code == 0, stderr
    (report,) = json_lines(lines)

    raised = report["recv"]["raised"]
    assert raised["class"] == "TimeoutError" and raised["module"] == "sixcast"
    assert raised["kind"] == "Timeout"
    assert raised["is_sixcast_error"] and raised["is_builtin_timeout"]
    assert 0.25 < report["recv_seconds"] < 2

    awaited = report["recv_async"]
    assert awaited["raised"]["class"] == "TimeoutError"
    assert awaited["raised"]["kind"] == "Timeout"
    assert 0.45 < awaited["seconds"] < 2
    # The event loop kept running while the receive waited.
    assert awaited["ticks"] >= 10
    assert awaited["longest_gap"] < 0.25

    assert report["try_recv"] == {"returned": "None"}
    assert report["negative_timeout"]["raised"]["class"] == "ValueError"


def test_use_after_close_raises_closed_error(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "closed")
    assert code == 0, stderr
    (report,) = json_lines(lines)

    assert report["closed"] is True
    assert report["repr"].endswith(" closed>")
    # A receive blocked when the context closed wakes up with ClosedError.
    assert report["blocked_recv"]["raised"]["class"] == "ClosedError"
    assert report["blocked_recv"]["seconds"] < 2
    for call in ("send", "flush", "recv", "try_recv", "join", "channel"):
        raised = report[call]["raised"]
        assert (raised["class"], raised["kind"]) == ("ClosedError", "Closed"), call
        assert raised["is_sixcast_error"]
    assert report["iterate"] == {"returned": "[]"}
    assert report["close_again"] == {"returned": "None"}
    assert report["with_block_closes"] is True


def test_send_too_large_raises_message_too_large_error(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "too-large")
    assert code == 0, stderr
    (report,) = json_lines(lines)
    for case in ("configured", "default"):
        raised = report[case]["raised"]
        assert (raised["class"], raised["kind"]) == ("MessageTooLargeError", "MessageTooLarge")
    assert report["at_limit"] == {"returned": "None"}


def test_try_send_and_send_timeout_refuse_what_the_send_rate_would_delay(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "paced")
    assert code == 0, stderr
    (report,) = json_lines(lines)
    assert report["first"] == {"returned": "None"}
    for refusal in ("refused", "too_short"):
        raised = report[refusal]["raised"]
        assert (raised["class"], raised["module"], raised["kind"]) == ("TimeoutError", "sixcast", "Timeout"), refusal
        assert raised["is_sixcast_error"] and raised["is_builtin_timeout"], refusal
    assert report["negative"]["raised"]["class"] == "ValueError"
    assert report["waited"] == {"returned": "None"}
    # The turn comes 100 ms after the first message, less the pacer's 10 ms burst.
    assert 0.08 <= report["waited_seconds"] < 0.4, report["waited_seconds"]
    # The GIL was released: another thread ran while send() waited.
    assert report["ticks"] >= 3, report["ticks"]
    # The refused messages were never queued, so they never left.
    assert report["sent"] == 2
    assert report["received"] == ["first", "second"]


def test_os_errors_raise_io_error_with_errno(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "io-error")
    assert code == 0, stderr
    (report,) = json_lines(lines)
    raised = report["open"]["raised"]
    assert (raised["class"], raised["kind"]) == ("IoError", "Io")
    assert raised["is_os_error"] and raised["is_sixcast_error"]
    assert raised["errno"] == errno.EADDRINUSE
    assert raised["str"] == f"[Errno {errno.EADDRINUSE}] {raised['message']}"


def test_cancelled_async_receive_loses_no_message(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "async-cancel")
    assert code == 0, stderr
    (report,) = json_lines(lines)
    assert report["cancelled"] is True
    assert report["message"]["payload"]["text"] == "after the cancel"


def test_repeatedly_cancelled_async_receives_lose_no_message(world):
    count = 300
    code, lines, stderr = world.run("h1", "world_probe.py", "async-cancel-many", count)
    assert code == 0, stderr
    (report,) = json_lines(lines)
    # Waits were cancelled while messages arrived, yet each message arrived exactly once.
    assert report["cancelled"] >= 10
    assert report["stats"]["messages_received"] == count
    assert sorted(map(int, report["received"])) == list(range(count))


def test_a_thousand_pending_async_receives_add_no_threads(world):
    count = 1000
    code, lines, stderr = world.run("h1", "world_probe.py", "async-many", count)
    assert code == 0, stderr
    (report,) = json_lines(lines)
    # Python's threads and the OS's: waiting receives park on the event loop, not on threads.
    assert report["threads_waiting"] == report["threads_before"]
    assert report["pending"] == count
    # A message completes its await in milliseconds (printed for the record; bounded loosely,
    # as the machine is shared).
    print("async-many latencies (ms):", [round(latency * 1000, 2) for latency in report["latencies"]])
    assert max(report["latencies"]) < 0.5


def test_skipped_messages_arrive_as_an_event(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "events-lost")
    assert code == 0, stderr
    (report,) = json_lines(lines)
    assert report["before"] is None
    assert report["received"] == [0, 1, 4]
    group = report["event"]["group"]
    assert report["event"] == {"kind": "messages_lost", "group": group, "sender": "0000000000000042", "count": 2}
    assert report["lost"] == 2
    assert report["timed_out"] is True
    assert report["dropped"] == 0


def test_sender_losses_count_the_skipped_messages_of_each_sender(world):
    code, lines, stderr = world.run("h1", "world_probe.py", "sender-losses")
    assert code == 0, stderr
    (report,) = json_lines(lines)
    assert report["before"] == []
    assert sorted(map(tuple, report["received"])) == sorted(
        [("0000000000000042", seq) for seq in (0, 1, 4)] + [("0000000000000007", seq) for seq in (0, 1, 2)]
    )
    assert report["lost"] == 2
    # By node id: the sender without a gap first.
    assert report["losses"] == [
        {"sender": "0000000000000007", "highest_seq": 2, "lost": 0},
        {"sender": "0000000000000042", "highest_seq": 4, "lost": 2},
    ]


def test_ctrl_c_interrupts_a_blocking_recv(world):
    receiver = world.start("h2", "world_probe.py", "recv", "quiet", 1, 60, "recv")
    receiver.wait_ready()
    time.sleep(0.3)
    interrupted = time.monotonic()
    receiver.popen.send_signal(signal.SIGINT)
    _, _, stderr = receiver.finish(timeout=10)
    assert "KeyboardInterrupt" in stderr
    assert time.monotonic() - interrupted < 2


def test_reachability_with_a_silent_stratum0(world):
    stratum0 = "[{}]:6447".format(world.hosts["h2"]["addr"])
    code, lines, stderr = world.run("h1", "world_probe.py", "reachability", stratum0)
    assert code == 0, stderr
    records = json_lines(lines)
    assert records[0] == {"config_stratum0": stratum0, "probe_timeout": 0.3}
    initial = records[1]["initial"]
    assert initial is not None and initial["relay"] is None
    settled = records[2]["settled"]
    assert settled is not None, "reachability() is None with a stratum0"
    assert settled["probe"] is not None or settled["last_error"] is not None, settled
    if settled["probe"] is not None:
        assert settled["probe"]["stratum0"] == stratum0
        assert settled["probe"]["answered"] is False
        assert settled["probe"]["rtt"] is None
        assert settled["probe"]["native_up"] is False
    assert settled["relay"] is None
    assert settled["gateway"] is None
    assert settled["serving"] == []
    assert settled["stratum0"] == stratum0, "the configured Stratum 0 was tried"
    assert settled["rejected_relays"] == 0, "no relay answered, so none was refused"
    assert settled["held_dropped"] == 0, "nothing was sent, so no copy was dropped"
    assert settled["repr"].startswith("Reachability(")


def test_library_warnings_reach_python_logging(world):
    stratum0 = "[{}]:6447".format(world.hosts["h2"]["addr"])
    code, lines, stderr = world.run("h1", "world_probe.py", "logging", stratum0)
    assert code == 0, stderr
    last_error, records = (record for record in json_lines(lines))
    assert last_error["last_error"] is not None, "the core was reached without a Stratum 0"
    warnings = [
        record
        for record in records["records"]
        if record["level"] == "WARNING" and "reaching the multicast core" in record["message"]
    ]
    assert warnings, records["records"]
    assert all(record["logger"].startswith("sixcast") for record in warnings), warnings


def test_conformance_agent(world):
    receivers = [world.start(host, "agent.py", "recv", "agents", 3, 20) for host in ("h2", "h3")]
    for receiver in receivers:
        receiver.wait_ready()
    code, _, stderr = world.run("h1", "agent.py", "send", "agents", "python")
    assert code == 0, stderr
    for receiver in receivers:
        code, lines, stderr = receiver.finish()
        assert code == 0, stderr
        received = json_lines(lines)
        sender = received[0]["sender"]
        assert re.fullmatch("[0-9a-f]{16}", sender)
        assert received == [
            {
                "size": 17,
                "text": "hello from python",
                "pattern_ok": False,
                "seq": 0,
                "sender": sender,
            },
            {"size": 0, "text": "", "pattern_ok": False, "seq": 1, "sender": sender},
            {"size": 1 << 20, "text": None, "pattern_ok": True, "seq": 2, "sender": sender},
        ]


def test_conformance_agent_exits_3_on_timeout(world):
    code, lines, _ = world.run("h1", "agent.py", "recv", "nobody-sends", 1, 0.5)
    assert (code, lines) == (3, ["READY"])


def test_readme_example_runs(world):
    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    # Not pytest's tmp_path: rootless runs are root in their user namespace, and pytest refuses
    # a /tmp/pytest-of-root that the real root made.
    with tempfile.TemporaryDirectory() as folder:
        script = pathlib.Path(folder, "readme_example.py")
        script.write_text(example, encoding="utf-8")
        code, lines, stderr = world.run("h1", script)
    assert code == 0, stderr
    assert lines == ["nobody else is on the channel yet"]


def run_protected(world, channel, holder_spec, outsider_spec, sender_spec, drop_reason):
    """Sends "text:secret" from h1 with the keys of `sender_spec` to a receiver in h2 with
    `holder_spec`, which must get it, and one in h3 with `outsider_spec`, which must get nothing
    and count a drop for `drop_reason`."""
    # Not pytest's tmp_path, for the reason test_readme_example_runs gives.
    with tempfile.TemporaryDirectory() as folder:
        specs = {"holder": holder_spec, "outsider": outsider_spec, "sender": sender_spec}
        paths = {role: pathlib.Path(folder, f"{role}.json") for role in specs}
        for role, spec in specs.items():
            paths[role].write_text(json.dumps(spec), encoding="utf-8")
        receive = ("world_probe.py", "protected-recv", channel)
        holder = world.start("h2", *receive, paths["holder"], 1, 0, 20)
        outsider = world.start("h3", *receive, paths["outsider"], 0, 1, 20)
        holder.wait_ready()
        outsider.wait_ready()
        code, lines, stderr = world.run(
            "h1", "world_probe.py", "protected-send", channel, paths["sender"], "text:secret"
        )
    assert code == 0, stderr
    (sent,) = json_lines(lines)
    assert sent["stats"]["messages_sent"] == 1

    code, lines, stderr = holder.finish()
    assert code == 0, stderr
    records = json_lines(lines)
    messages = [record["message"] for record in records if "message" in record]
    assert [message["payload"]["text"] for message in messages] == ["secret"]
    summary = records[-1]["summary"]
    assert summary["stats"]["messages_received"] == 1
    assert sum(summary["stats"]["drops"].values()) == 0

    code, lines, stderr = outsider.finish()
    assert code == 0, stderr
    records = json_lines(lines)
    assert [record for record in records if "message" in record] == []
    stats = records[-1]["summary"]["stats"]
    assert stats["messages_received"] == 0
    assert stats["drops"][drop_reason] >= 1
    assert set(stats["drops"]) == set(sixcast.DROP_REASONS)


def test_sealed_channel_reaches_only_receivers_with_the_key(world):
    key = sixcast.ChannelKey.generate().to_file_text()
    run_protected(world, "sealed", {"key": key}, {}, {"key": key}, "no_key")


def test_token_of_a_trusted_issuer_admits_its_signer(world):
    channel = "vouched"
    issuer, signer = sixcast.SigningKey.generate(), sixcast.SigningKey.generate()
    expiry = int(time.time()) + 3600
    token = sixcast.Token.issue(issuer, signer.public_key(), sixcast.group_address(channel), expiry)
    stranger = sixcast.SigningKey.generate().public_key()
    run_protected(
        world,
        channel,
        {"issuers": [issuer.public_key().to_file_text()]},
        {"trust": [stranger.to_file_text()]},
        {"sign": signer.to_file_text(), "token": token.to_file_text()},
        "untrusted_signer",
    )
