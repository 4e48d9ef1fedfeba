"""Tests of sixcast.Config (the core's `config` module): keyword fields, defaults, validation."""

import pytest
import sixcast

FIELDS = {
    "profile": "ssm",
    "scope": "site",
    "port": 7000,
    "interfaces": ["eth0", "eth1"],
    "hop_limit": 8,
    "loopback": False,
    "max_datagram_size": 1400,
    "max_message_size": 65536,
    "linger": 0.005,
    "packing": False,
    "queue_capacity": 100,
    "queue_bytes": 1 << 16,
    "recv_buffer": 1 << 20,
    "send_rate_messages": 1000,
    "send_rate_bytes": 1 << 20,
    "reliable": True,
    "reassembly_timeout": 2.5,
    "reassembly_memory": 1 << 24,
    "stratum0": "[2001:db8::1]:6447",
    "domain": "example.org",
    "dns_server": "[2001:db8::53]:5353",
    "probe_timeout": 0.5,
    "probe_interval": 10.0,
}


def test_defaults():
    config = sixcast.Config()
    assert config.profile == "sixcast"
    assert config.rp is None
    assert config.scope == "global"
    assert config.port is None
    assert config.effective_port == sixcast.DEFAULT_PORT
    assert config.interfaces == []
    assert config.hop_limit == sixcast.DEFAULT_HOP_LIMIT
    assert config.loopback is True
    assert config.max_datagram_size == sixcast.DEFAULT_DATAGRAM_SIZE
    assert config.max_message_size == sixcast.DEFAULT_MAX_MESSAGE_SIZE
    assert config.linger == sixcast.DEFAULT_LINGER
    assert config.packing is True
    assert config.queue_capacity == sixcast.DEFAULT_QUEUE_CAPACITY
    assert config.queue_bytes == sixcast.DEFAULT_QUEUE_BYTES == 64 << 20
    assert config.recv_buffer == sixcast.DEFAULT_RECV_BUFFER
    assert config.send_rate_messages == 0 and config.send_rate_bytes == 0
    assert config.reliable is False
    assert config.stratum0 is None
    assert config.domain is None
    assert config.dns_server is None
    assert config.probe_timeout == 2.0
    assert config.probe_interval == 30.0
    config.validate()


def test_every_field_is_set_and_readable():
    config = sixcast.Config(**FIELDS)
    for name, value in FIELDS.items():
        assert getattr(config, name) == value, name
    config.validate()


def test_none_keeps_the_default():
    assert sixcast.Config(**{name: None for name in FIELDS}) == sixcast.Config()


def test_embedded_rp_profile_takes_its_rp():
    config = sixcast.Config(profile="embedded-rp", rp="2001:db8:5c::5/64", scope="org")
    assert (config.profile, config.rp, config.scope) == ("embedded-rp", "2001:db8:5c::5/64", "org")


def test_organization_is_another_spelling_of_org():
    assert sixcast.Config(scope="organization").scope == "org"


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="hop_limits"):
        sixcast.Config(hop_limits=3)


def test_fields_are_keyword_only():
    with pytest.raises(TypeError):
        sixcast.Config("ssm")


@pytest.mark.parametrize(
    "fields",
    [
        {"hop_limit": "8"},
        {"loopback": "yes"},
        {"packing": 0},
        {"reliable": 1},
        {"interfaces": "eth0"},
        {"linger": "1"},
    ],
    ids=lambda fields: next(iter(fields)),
)
def test_wrong_types_are_type_errors(fields):
    with pytest.raises(TypeError):
        sixcast.Config(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"profile": "bogus"},
        {"profile": "embedded-rp"},
        {"rp": "2001:db8:5c::5/64"},
        {"scope": "galaxy"},
        {"hop_limit": 256},
        {"port": -1},
        {"port": 65536},
        {"queue_capacity": -1},
        {"queue_bytes": -1},
        {"send_rate_messages": -1},
        {"linger": -0.1},
        {"reassembly_timeout": float("nan")},
        {"stratum0": "2001:db8::1"},
        {"stratum0": "2001:db8::1:6447"},
        {"stratum0": "[2001:db8::1]"},
        {"stratum0": "[2001:db8::1]:65536"},
        {"stratum0": "192.0.2.1:6447"},
        {"stratum0": "stratum0.example:6447"},
        {"stratum0": ""},
        {"dns_server": "resolver.example"},
        {"dns_server": "[2001:db8::53]:99999"},
        {"probe_timeout": -1.0},
        {"probe_interval": -1.0},
    ],
    ids=lambda fields: "-".join(f"{key}={value}" for key, value in fields.items()),
)
def test_unrepresentable_values_are_rejected_at_construction(fields):
    with pytest.raises(sixcast.InvalidConfigError) as raised:
        sixcast.Config(**fields)
    assert next(iter(fields)) in raised.value.message


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"port": 0}, "port"),
        ({"hop_limit": 0}, "hop_limit"),
        ({"max_datagram_size": 10}, "max_datagram_size"),
        ({"max_message_size": 16 * 1024 * 1024 + 1}, "max_message_size"),
        ({"queue_capacity": 0}, "queue_capacity"),
        ({"queue_bytes": 0}, "queue_bytes"),
        ({"reassembly_timeout": 0}, "reassembly_timeout"),
        ({"reassembly_memory": 1024}, "reassembly_memory"),
        ({"interfaces": [""]}, "interface"),
        ({"probe_timeout": 0}, "probe_timeout"),
        ({"probe_timeout": 5, "probe_interval": 1}, "probe_interval"),
        ({"stratum0": "[ff1e::1]:6447"}, "stratum0"),
        ({"stratum0": "[::]:6447"}, "stratum0"),
        ({"stratum0": "[2001:db8::1]:0"}, "stratum0"),
        ({"domain": ""}, "domain"),
        ({"domain": "a..b"}, "domain"),
        ({"dns_server": "2001:db8::53"}, "dns_server"),
        ({"domain": "example.org", "dns_server": "[::]:53"}, "dns_server"),
        ({"profile": "librecast", "reliable": True}, "reliable"),
    ],
    ids=lambda value: str(value),
)
def test_validate_names_the_bad_field(fields, named):
    config = sixcast.Config(**fields)
    with pytest.raises(sixcast.InvalidConfigError) as raised:
        config.validate()
    assert named in raised.value.message


def test_equality():
    assert sixcast.Config(**FIELDS) == sixcast.Config(**FIELDS)
    assert sixcast.Config(hop_limit=1) != sixcast.Config(hop_limit=2)


def test_repr_evaluates_to_an_equal_config():
    for config in (
        sixcast.Config(),
        sixcast.Config(**FIELDS),
        sixcast.Config(profile="embedded-rp", rp="2001:db8:5c::5/64"),
    ):
        assert eval(repr(config), {"Config": sixcast.Config}) == config


def test_context_takes_a_config_or_fields_but_not_both():
    # Both raise before a socket is opened.
    with pytest.raises(TypeError, match="not both"):
        sixcast.Context(sixcast.Config(), hop_limit=1)
    with pytest.raises(TypeError, match="hop_limits"):
        sixcast.Context(hop_limits=1)
    with pytest.raises(TypeError):
        sixcast.Context({"hop_limit": 1})


def test_stratum0_text_round_trips():
    config = sixcast.Config(stratum0="[2001:0db8::0001]:6447")
    assert config.stratum0 == "[2001:db8::1]:6447"
    assert "stratum0='[2001:db8::1]:6447'" in repr(config)
    with pytest.raises(TypeError):
        sixcast.Config(stratum0=6447)


def test_probe_interval_round_trips():
    config = sixcast.Config(probe_timeout=1.5, probe_interval=45.25)
    assert config.probe_interval == 45.25
    assert "probe_interval=45.25" in repr(config)
    assert eval(repr(config), {"Config": sixcast.Config}) == config
    config.validate()


def test_probe_interval_shorter_than_the_timeout_is_invalid():
    config = sixcast.Config(probe_timeout=3.0, probe_interval=2.0)
    with pytest.raises(sixcast.InvalidConfigError) as raised:
        config.validate()
    assert "probe_interval" in raised.value.message


def test_reliable_round_trips_and_needs_the_sixcast_header():
    config = sixcast.Config(reliable=True)
    assert config.reliable is True
    assert config != sixcast.Config(), "an ignored field would leave the default"
    assert "reliable=True" in repr(config)
    assert eval(repr(config), {"Config": sixcast.Config}) == config
    config.validate()
    sixcast.Config(profile="ssm", reliable=True).validate()
    sixcast.Config(profile="librecast").validate()
    with pytest.raises(sixcast.InvalidConfigError) as raised:
        sixcast.Config(profile="librecast", reliable=True).validate()
    assert "reliable" in raised.value.message
    with pytest.raises(sixcast.InvalidConfigError):
        sixcast.Context(profile="librecast", reliable=True)


REPAIR_COUNTERS = [
    "nacks_sent",
    "nacks_received",
    "repairs_sent",
    "repair_bytes_sent",
    "repairs_received",
    "packets_recovered",
    "packets_lost",
]


def test_a_reliable_context_counts_repairs_from_zero():
    # Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
    with sixcast.Context(reliable=True) as context:
        assert context.config.reliable is True
        for stats in (context.channel("quiet").stats(), context.stats()):
            counters = stats.as_dict()
            for name in REPAIR_COUNTERS:
                assert getattr(stats, name) == 0, name
                assert counters[name] == 0, name
                assert f"{name}=0" in repr(stats), name
            assert list(counters)[-len(REPAIR_COUNTERS) - 1 :] == [*REPAIR_COUNTERS, "drops"]


def test_reachability_is_none_without_stratum0():
    # Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
    with sixcast.Context() as context:
        assert context.config.stratum0 is None
        assert context.reachability() is None


def test_domain_and_dns_server_round_trip():
    config = sixcast.Config(domain="example.org", dns_server="2001:db8::53")
    assert config.domain == "example.org"
    assert config.dns_server == "[2001:db8::53]:53", "a bare address means port 53"
    assert "dns_server='[2001:db8::53]:53'" in repr(config)
    assert eval(repr(config), {"Config": sixcast.Config}) == config
    config.validate()
    with pytest.raises(TypeError):
        sixcast.Config(domain=53)


def test_relay_keys_are_pinned_and_round_trip():
    assert sixcast.Config().relay_keys == []
    key = sixcast.SigningKey.from_seed(bytes(range(32))).public_key()
    config = sixcast.Config(relay_keys=[key])
    assert config.relay_keys == [key]
    assert config != sixcast.Config(), "an ignored field would leave the default"
    assert "relay_keys=[PublicKey.from_file_text(" in repr(config)
    namespace = {"Config": sixcast.Config, "PublicKey": sixcast.PublicKey}
    assert eval(repr(config), namespace) == config
    with pytest.raises(TypeError):
        sixcast.Config(relay_keys=["sixcast-public-key-v1 00"])
    with pytest.raises(sixcast.InvalidConfigError):
        sixcast.PublicKey.from_bytes(bytes([1] + [0] * 31))


def test_relay_issuers_are_trusted_and_round_trip():
    assert sixcast.Config().relay_issuers == []
    issuer = sixcast.SigningKey.from_seed(bytes(range(1, 33))).public_key()
    config = sixcast.Config(relay_issuers=[issuer])
    assert config.relay_issuers == [issuer]
    assert config.relay_keys == []
    assert config != sixcast.Config(), "an ignored field would leave the default"
    namespace = {"Config": sixcast.Config, "PublicKey": sixcast.PublicKey}
    assert eval(repr(config), namespace) == config
    with pytest.raises(TypeError):
        sixcast.Config(relay_issuers=[b"not a key"])
