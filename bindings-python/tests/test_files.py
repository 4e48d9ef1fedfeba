"""Tests of Channel.send_file and FileReceiver (the core's `files` module): their argument
errors, and a file sent from one host of a sixcast-netlab world to another (never on this
machine's own interfaces)."""

import errno
import hashlib
import json
import os
import pathlib
import re
import tempfile

import pytest
import sixcast

STATS_KEYS = {
    "frames",
    "other_messages",
    "malformed",
    "refused",
    "unfollowed",
    "chunks",
    "duplicate_chunks",
}


def json_lines(lines):
    return [json.loads(line) for line in lines]


def test_file_receiver_needs_an_existing_folder():
    # Not pytest's tmp_path, for the reason test_readme_example_runs gives.
    with tempfile.TemporaryDirectory() as folder:
        missing = os.path.join(folder, "missing")
        with pytest.raises(sixcast.InvalidConfigError) as raised:
            sixcast.FileReceiver(missing)
        assert raised.value.kind == "InvalidConfig"
        assert missing in raised.value.message

        a_file = pathlib.Path(folder, "a-file")
        a_file.write_bytes(b"not a folder")
        with pytest.raises(sixcast.InvalidConfigError):
            sixcast.FileReceiver(a_file)
        assert not os.path.exists(missing)


def test_file_receiver_takes_a_path_like_folder_and_starts_with_zero_counters():
    with tempfile.TemporaryDirectory() as folder:
        receiver = sixcast.FileReceiver(pathlib.Path(folder), max_size=1 << 20, max_transfers=2)
        assert receiver.stats() == dict.fromkeys(STATS_KEYS, 0)
        assert repr(receiver) == "<sixcast.FileReceiver chunks=0 refused=0>"
        # Making a receiver writes nothing into its folder.
        assert os.listdir(folder) == []


def test_file_receiver_options_are_keyword_only_and_typed():
    with tempfile.TemporaryDirectory() as folder:
        with pytest.raises(TypeError):
            sixcast.FileReceiver(folder, 10)
        with pytest.raises(TypeError):
            sixcast.FileReceiver(folder, max_transfers="many")
        with pytest.raises(OverflowError):
            sixcast.FileReceiver(folder, max_size=-1)


def test_send_file_and_recv_raise_the_binding_errors(world):
    with tempfile.TemporaryDirectory() as folder:
        pathlib.Path(folder, "payload").write_bytes(b"some bytes")
        code, lines, stderr = world.run("h1", "world_probe.py", "file-errors", folder)
    assert code == 0, stderr
    (report,) = json_lines(lines)
    for case in ("path_name", "hidden_name", "no_passes"):
        raised = report[case]["raised"]
        assert (raised["class"], raised["kind"]) == ("InvalidConfigError", "InvalidConfig"), case
        assert raised["is_sixcast_error"]
    assert "../x" in report["path_name"]["raised"]["message"]
    for case in ("missing", "folder"):
        raised = report[case]["raised"]
        assert (raised["class"], raised["kind"]) == ("IoError", "Io"), case
        assert raised["is_os_error"]
    assert report["missing"]["raised"]["errno"] == errno.ENOENT
    assert report["folder"]["raised"]["errno"] == errno.EISDIR
    assert report["negative_timeout"]["raised"]["class"] == "ValueError"

    raised = report["recv"]["raised"]
    assert (raised["class"], raised["kind"]) == ("TimeoutError", "Timeout")
    assert raised["is_builtin_timeout"]
    assert 0.25 < report["recv_seconds"] < 2
    assert report["stats"] == dict.fromkeys(STATS_KEYS, 0)
    # Nothing was sent: every check came before the first frame.
    assert report["sent"] == 0


def test_a_file_arrives_whole_in_another_host(world):
    content = os.urandom(200 * 1024)
    digest = hashlib.sha256(content).hexdigest()
    channel = "files-" + os.urandom(4).hex()
    # Not pytest's tmp_path, for the reason test_readme_example_runs gives.
    with tempfile.TemporaryDirectory() as source, tempfile.TemporaryDirectory() as inbox:
        path = pathlib.Path(source, "random.bin")
        path.write_bytes(content)
        receiver = world.start("h2", "world_probe.py", "recv-file", channel, inbox, 20)
        receiver.wait_ready()
        code, lines, stderr = world.run(
            "h1", "world_probe.py", "send-file", channel, path, "arrived.bin"
        )
        assert code == 0, stderr
        (sent,) = json_lines(lines)
        code, lines, stderr = receiver.finish()
        assert code == 0, stderr
        outcome, stats = json_lines(lines)
        received = pathlib.Path(inbox, "arrived.bin").read_bytes()
        left = sorted(os.listdir(inbox))

    assert sent["sent"]["name"] == "arrived.bin"
    assert sent["sent"]["size"] == len(content)
    assert sent["sent"]["sha256"] == digest
    chunk = sent["sent"]["chunk"]
    assert 0 < chunk < sixcast.MAX_DATAGRAM_SIZE

    assert "file" in outcome, outcome
    file = outcome["file"]
    assert file == {
        "complete": True,
        "name": "arrived.bin",
        "path": os.path.join(inbox, "arrived.bin"),
        "size": len(content),
        "sha256": digest,
        "sender": sent["node_id"],
        "resumed": 0,
    }
    assert re.fullmatch("[0-9a-f]{16}", file["sender"])
    assert received == content
    assert hashlib.sha256(received).hexdigest() == digest
    # The partial file was renamed and its state removed.
    assert left == ["arrived.bin"]

    chunks = -(-len(content) // chunk)
    assert stats["stats"]["chunks"] == chunks
    # The OFFER and every chunk; the transfer ended with its last chunk, before DONE.
    assert stats["stats"]["frames"] >= chunks + 1
    assert stats["stats"]["malformed"] == stats["stats"]["refused"] == 0
    assert set(stats["stats"]) == STATS_KEYS
