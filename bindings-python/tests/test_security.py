"""Tests of channel security (the core's `crypto` module) against the shared vectors in
tests/conformance/vectors/security.json: key files, tokens, sealing, signing and opening
datagrams."""

import pytest
import sixcast
from conftest import case_id, load_vectors

SECURITY = load_vectors("security.json")
KEYS = {entry["name"]: entry for entry in SECURITY["keys"]}
OPENED = [case for case in SECURITY["open"] if "plain" in case]
REFUSED = [case for case in SECURITY["open"] if "reason" in case]
READERS = {
    "channel": sixcast.ChannelKey.from_file_text,
    "signing": sixcast.SigningKey.from_file_text,
    "public": sixcast.PublicKey.from_file_text,
    "token": sixcast.Token.from_file_text,
}
SIGNING_KEYS = [
    sixcast.SigningKey.from_file_text(entry["file"])
    for entry in SECURITY["keys"]
    if entry["kind"] == "signing"
]


def open_case(case):
    return sixcast.open_datagram(
        case["group"],
        bytes.fromhex(case["datagram"]),
        keys=[sixcast.ChannelKey.from_file_text(text) for text in case["keys"]],
        trusted=[sixcast.PublicKey.from_file_text(text) for text in case["trusted"]],
        issuers=[sixcast.PublicKey.from_file_text(text) for text in case["issuers"]],
        now=case["now"],
    )


@pytest.mark.parametrize("entry", SECURITY["keys"], ids=case_id)
def test_key_file(entry):
    text = entry["file"]
    key = READERS[entry["kind"]](text)
    assert key.to_file_text() == text
    if entry["kind"] == "channel":
        assert key.id == int(entry["id"], 16)
        assert sixcast.ChannelKey.from_bytes(key.id, bytes.fromhex(entry["secret"])) == key
    elif entry["kind"] == "signing":
        assert key.public_key().to_bytes().hex() == entry["public"]
        assert sixcast.SigningKey.from_seed(bytes.fromhex(entry["seed"])).to_file_text() == text
    else:
        assert key.fingerprint == entry["fingerprint"]
        assert sixcast.PublicKey.from_bytes(key.to_bytes()) == key


def token_id(entry):
    return f"until-{entry['not_after']}"


@pytest.mark.parametrize("entry", SECURITY["tokens"], ids=token_id)
def test_token_file(entry):
    token = sixcast.Token.from_file_text(entry["file"])
    assert token.to_file_text() == entry["file"]
    assert token.subject.to_bytes().hex() == entry["subject"]
    assert token.group == entry["group"]
    assert token.not_after == entry["not_after"]
    assert token.issuer == entry["issuer"]
    assert sixcast.Token.from_bytes(token.to_bytes()) == token
    (issuer,) = [key for key in SIGNING_KEYS if key.public_key().fingerprint == entry["issuer"]]
    issued = sixcast.Token.issue(issuer, token.subject, entry["group"], entry["not_after"])
    assert issued == token


@pytest.mark.parametrize("case", SECURITY["invalid_key_files"], ids=case_id)
def test_invalid_key_file(case):
    with pytest.raises(sixcast.InvalidConfigError) as raised:
        READERS[case["kind"]](case["text"])
    assert raised.value.kind == case["error"]


@pytest.mark.parametrize("case", SECURITY["seal"], ids=case_id)
def test_seal(case):
    channel_key = case["channel_key"] and sixcast.ChannelKey.from_file_text(case["channel_key"])
    signing_key = case["signing_key"] and sixcast.SigningKey.from_file_text(case["signing_key"])
    token = case["token"] and sixcast.Token.from_file_text(case["token"])
    plain = bytes.fromhex(case["plain"])
    protected = sixcast.seal_datagram(
        case["group"],
        plain,
        channel_key=channel_key or None,
        signing_key=signing_key or None,
        token=token or None,
    )
    assert protected.hex() == case["protected"]
    opened = sixcast.open_datagram(
        case["group"],
        protected,
        keys=[channel_key] if channel_key else [],
        trusted=[signing_key.public_key()] if signing_key else [],
        now=token.not_after if token else None,
    )
    assert opened.plain == plain
    assert opened.dropped is None


@pytest.mark.parametrize("case", OPENED, ids=case_id)
def test_open(case):
    opened = open_case(case)
    assert opened.plain.hex() == case["plain"]
    assert opened.dropped is None
    sixcast.decode_datagram(opened.plain)


@pytest.mark.parametrize("case", REFUSED, ids=case_id)
def test_open_refused(case):
    if case["kind"] == "malformed":
        with pytest.raises(sixcast.MalformedError) as raised:
            open_case(case)
        assert raised.value.reason == case["reason"]
    else:
        assert case["kind"] == "dropped"
        opened = open_case(case)
        assert opened.plain is None
        assert opened.dropped == case["reason"]
        assert opened.dropped in sixcast.DROP_REASONS


def test_constants():
    constants = SECURITY["constants"]
    assert sixcast.FINGERPRINT_LEN == constants["fingerprint_len"]
    assert sixcast.FLAG_SEALED == constants["flag_sealed"]
    assert sixcast.FLAG_SIGNED == constants["flag_signed"]
    assert sixcast.FLAG_TOKEN == constants["flag_token"]
    assert sixcast.FLAG_COVERED == constants["flag_covered"]
    assert sixcast.KEY_ID_LEN == constants["key_id_len"]
    assert sixcast.SEAL_KEY_CONTEXT == constants["seal_key_context"]
    assert sixcast.SEAL_OVERHEAD == constants["seal_overhead"]
    assert sixcast.SIGNATURE_DOMAIN.hex() == constants["signature_domain"]
    assert sixcast.SIGNATURE_LEN == constants["signature_len"]
    assert sixcast.SIGNATURE_OVERHEAD == constants["signature_overhead"]
    assert sixcast.TAG_LEN == constants["tag_len"]
    assert sixcast.TOKEN_DOMAIN.hex() == constants["token_domain"]
    assert sixcast.TOKEN_LEN == constants["token_len"]


def test_generated_keys_round_trip_through_their_files():
    channel_key = sixcast.ChannelKey.generate()
    assert sixcast.ChannelKey.from_file_text(channel_key.to_file_text()) == channel_key
    assert channel_key != sixcast.ChannelKey.generate()
    assert channel_key.to_file_text()[-65:-1] not in repr(channel_key)
    signing_key = sixcast.SigningKey.generate()
    again = sixcast.SigningKey.from_file_text(signing_key.to_file_text())
    assert again.public_key() == signing_key.public_key()
    assert signing_key.to_file_text()[-65:-1] not in repr(signing_key)
    public_key = signing_key.public_key()
    assert sixcast.PublicKey.from_file_text(public_key.to_file_text()) == public_key
    assert hash(public_key) == hash(again.public_key())
    assert len(public_key.fingerprint) == 16


def test_key_bytes_of_the_wrong_length_raise_value_error():
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        sixcast.ChannelKey.from_bytes(1, bytes(31))
    with pytest.raises(ValueError, match="32 bytes"):
        sixcast.SigningKey.from_seed(b"")
    with pytest.raises(OverflowError):
        sixcast.ChannelKey.from_bytes(1 << 32, bytes(32))


def test_sealing_a_datagram_that_is_not_plain_raises_malformed_error():
    key = sixcast.ChannelKey.generate()
    (plain,) = sixcast.pack_messages("0123456789abcdef", 0, 1280, [b"hello"])
    sealed = sixcast.seal_datagram("ff1e::1", plain, channel_key=key)
    with pytest.raises(sixcast.MalformedError):
        sixcast.seal_datagram("ff1e::1", sealed, channel_key=key)
    with pytest.raises(sixcast.InvalidAddressError):
        sixcast.seal_datagram("not an address", plain, channel_key=key)


def test_channel_key_methods_and_drop_counters():
    # Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
    with sixcast.Context() as context:
        channel = context.channel("quiet")
        drops = channel.stats().drops
        assert list(drops) == list(sixcast.DROP_REASONS)
        assert set(drops.values()) == {0}
        assert channel.stats().as_dict()["drops"] == drops
        channel.set_key(sixcast.ChannelKey.generate())
        channel.add_key(sixcast.ChannelKey.from_bytes(7, bytes(32)))
        assert channel.remove_key(7) is True
        assert channel.remove_key(7) is False
        signing_key = sixcast.SigningKey.generate()
        early = sixcast.Token.issue(signing_key, signing_key.public_key(), channel.group, 0)
        with pytest.raises(sixcast.InvalidConfigError, match="signing key"):
            channel.present(early)
        channel.sign_with(signing_key)
        channel.trust(signing_key.public_key())
        issuer = sixcast.SigningKey.generate()
        token = sixcast.Token.issue(issuer, signing_key.public_key(), channel.group, 1 << 40)
        channel.present(token)
        channel.trust_issuer(issuer.public_key())
        other = sixcast.Token.issue(issuer, signing_key.public_key(), "ff1e::1", 1 << 40)
        with pytest.raises(sixcast.InvalidConfigError, match="another channel"):
            channel.present(other)


def test_times_beyond_the_clock_raise_value_error():
    key = sixcast.SigningKey.generate()
    with pytest.raises(ValueError, match="not_after"):
        sixcast.Token.issue(key, key.public_key(), "ff1e::1", (1 << 64) - 1)
    with pytest.raises(ValueError, match="now"):
        sixcast.open_datagram("ff1e::1", b"", now=(1 << 64) - 1)
