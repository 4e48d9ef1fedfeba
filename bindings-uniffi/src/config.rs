//! [`Config`]: the settings of a context, as a plain record.

use std::time::Duration;

use crate::{
    addr::{parse_profile, parse_scope, profile_rp},
    error::{Result, SixcastError},
};

/// Settings of a `Context`. Every field has the core's default, so set only what differs.
///
/// Names and sizes are checked when the configuration is used (or by `validate_config`);
/// errors name the field.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Config {
    /// How channel names map to groups: `sixcast`, `ssm`, `embedded-rp` or `librecast`.
    #[uniffi(default = "sixcast")]
    pub profile: String,
    /// The rendezvous point of the `embedded-rp` profile as `address/prefix-length`, such as
    /// `2001:db8:5c::5/64`; null for the other profiles.
    #[uniffi(default = None)]
    pub rp: Option<String>,
    /// How far channel groups reach: `link`, `site`, `org` or `global`.
    #[uniffi(default = "global")]
    pub scope: String,
    /// The UDP port; null means the profile's default (6446, or 4242 for `librecast`).
    #[uniffi(default = None)]
    pub port: Option<u16>,
    /// Interfaces (by name) to join and send on; empty means every interface that is up and can
    /// carry multicast, except loopback.
    #[uniffi(default = [])]
    pub interfaces: Vec<String>,
    /// Hop limit of sent datagrams (1 keeps them on the link).
    #[uniffi(default = 64)]
    pub hop_limit: u8,
    /// Whether other sockets of this host receive what this context sends. A context never
    /// delivers its own messages to itself either way.
    #[uniffi(default = true)]
    pub loopback: bool,
    /// Largest UDP payload sent, in bytes.
    #[uniffi(default = 1232)]
    pub max_datagram_size: u64,
    /// Largest message accepted by `send` and reassembled on receipt, in bytes.
    #[uniffi(default = 1048576)]
    pub max_message_size: u64,
    /// How long sent messages may wait to leave together (packed, in batches), in milliseconds;
    /// 0 sends every message at once.
    #[uniffi(default = 1)]
    pub linger_ms: u64,
    /// Whether small messages share datagrams; off, every message has datagrams of its own.
    #[uniffi(default = true)]
    pub packing: bool,
    /// Received messages held per channel until the application takes them.
    #[uniffi(default = 65536)]
    pub queue_capacity: u64,
    /// Payload bytes held per channel until the application takes them.
    #[uniffi(default = 67108864)]
    pub queue_bytes: u64,
    /// Kernel receive buffer size requested for the socket, in bytes.
    #[uniffi(default = 8388608)]
    pub recv_buffer: u64,
    /// Messages per second the context sends at most, over its channels; `send` waits for its
    /// turn beyond it. 0: no limit.
    #[uniffi(default = 0)]
    pub send_rate_messages: u64,
    /// Payload bytes per second the context sends at most. 0: no limit.
    #[uniffi(default = 0)]
    pub send_rate_bytes: u64,
    /// Whether the context's channels send reliably: receivers ask for what they miss and are
    /// repaired, and what cannot be repaired in time is reported lost. Needs a profile with the
    /// sixcast header (not `librecast`).
    #[uniffi(default = false)]
    pub reliable: bool,
    /// How long the pieces of a fragmented message are kept while waiting for the rest, in
    /// milliseconds.
    #[uniffi(default = 5000)]
    pub reassembly_timeout_ms: u64,
    /// Upper bound on memory held by partly received messages, per channel, in bytes.
    #[uniffi(default = 33554432)]
    pub reassembly_memory: u64,
    /// The core's Stratum 0 as `[address]:port`, such as `[2001:db8::1]:6447`; when set, the
    /// context probes whether native multicast reaches the core and uses a relay where it does
    /// not. Null: no probing. Text of another form fails with `InvalidConfig`.
    #[uniffi(default = None)]
    pub stratum0: Option<String>,
    /// A domain whose `_sixcast._udp.<domain>` SRV records name Stratum 0, used when
    /// `stratum0` is null. Null: no DNS discovery.
    #[uniffi(default = None)]
    pub domain: Option<String>,
    /// The DNS server asked for `domain`, `address` or `[address]:port` (port 53 when left
    /// out). Null: the system's resolvers.
    #[uniffi(default = None)]
    pub dns_server: Option<String>,
    /// How long a probe of native reachability may take, in milliseconds.
    #[uniffi(default = 2000)]
    pub probe_timeout_ms: u64,
    /// How often the probe is repeated once a path is settled, in milliseconds; at least
    /// `probe_timeout_ms`.
    #[uniffi(default = 30000)]
    pub probe_interval_ms: u64,
    /// Pinned relay identity keys, 32 bytes each (`PublicKey.toBytes()`): tunnel only through a
    /// relay that proves one of them. Empty: any relay. An invalid key fails with
    /// `InvalidConfig`.
    #[uniffi(default = [])]
    pub relay_keys: Vec<Vec<u8>>,
    /// Trusted relay voucher issuers, 32-byte public keys: also tunnel through relays one of
    /// them vouched for. An invalid key fails with `InvalidConfig`.
    #[uniffi(default = [])]
    pub relay_issuers: Vec<Vec<u8>>,
}

/// The core's default configuration. Equal to a `Config` built with no arguments; the bindings'
/// tests check that the two agree.
#[uniffi::export]
pub fn default_config() -> Config {
    Config::from(&sixcast::Config::default())
}

/// Checks every field as opening a context would, without opening one. Fails with
/// `InvalidConfig` (or `InvalidAddress` for a bad RP) naming the field.
#[uniffi::export]
pub fn validate_config(config: Config) -> Result<()> {
    sixcast::Config::try_from(&config)?.validate()?;
    Ok(())
}

impl From<&sixcast::Config> for Config {
    fn from(config: &sixcast::Config) -> Self {
        Self {
            profile: config.profile.name().to_owned(),
            rp: profile_rp(&config.profile),
            scope: config.scope.name().to_owned(),
            port: config.port,
            interfaces: config.interfaces.clone(),
            hop_limit: config.hop_limit,
            loopback: config.loopback,
            max_datagram_size: widen(config.max_datagram_size),
            max_message_size: widen(config.max_message_size),
            linger_ms: millis(config.linger),
            packing: config.packing,
            queue_capacity: widen(config.queue_capacity),
            queue_bytes: widen(config.queue_bytes),
            recv_buffer: widen(config.recv_buffer),
            send_rate_messages: config.send_rate_messages,
            send_rate_bytes: config.send_rate_bytes,
            reliable: config.reliable,
            reassembly_timeout_ms: millis(config.reassembly_timeout),
            reassembly_memory: widen(config.reassembly_memory),
            stratum0: config.stratum0.map(|stratum0| stratum0.to_string()),
            domain: config.domain.clone(),
            dns_server: config.dns_server.map(|server| server.to_string()),
            probe_timeout_ms: millis(config.probe_timeout),
            probe_interval_ms: millis(config.probe_interval),
            relay_keys: key_bytes(&config.relay_keys),
            relay_issuers: key_bytes(&config.relay_issuers),
        }
    }
}

impl TryFrom<&Config> for sixcast::Config {
    type Error = SixcastError;

    /// Parses the text fields; range checks are left to [`sixcast::Config::validate`].
    fn try_from(config: &Config) -> Result<Self> {
        let mut core = Self::default();
        core.profile = parse_profile(&config.profile, config.rp.as_deref())?;
        core.scope = parse_scope(&config.scope)?;
        core.port = config.port;
        core.interfaces.clone_from(&config.interfaces);
        core.hop_limit = config.hop_limit;
        core.loopback = config.loopback;
        core.max_datagram_size = narrow(config.max_datagram_size, "max_datagram_size")?;
        core.max_message_size = narrow(config.max_message_size, "max_message_size")?;
        core.linger = Duration::from_millis(config.linger_ms);
        core.packing = config.packing;
        core.queue_capacity = narrow(config.queue_capacity, "queue_capacity")?;
        core.queue_bytes = narrow(config.queue_bytes, "queue_bytes")?;
        core.recv_buffer = narrow(config.recv_buffer, "recv_buffer")?;
        core.send_rate_messages = config.send_rate_messages;
        core.send_rate_bytes = config.send_rate_bytes;
        core.reliable = config.reliable;
        core.reassembly_timeout = Duration::from_millis(config.reassembly_timeout_ms);
        core.reassembly_memory = narrow(config.reassembly_memory, "reassembly_memory")?;
        core.stratum0 = config
            .stratum0
            .as_deref()
            .map(|text| {
                text.parse().map_err(|_| {
                    SixcastError::InvalidConfig(format!(
                        "stratum0 {text:?} is not an IPv6 socket address \"[address]:port\""
                    ))
                })
            })
            .transpose()?;
        core.domain.clone_from(&config.domain);
        core.dns_server = config
            .dns_server
            .as_deref()
            .map(sixcast::locate::parse_dns_server)
            .transpose()?;
        core.probe_timeout = Duration::from_millis(config.probe_timeout_ms);
        core.probe_interval = Duration::from_millis(config.probe_interval_ms);
        core.relay_keys = public_keys("relay_keys", &config.relay_keys)?;
        core.relay_issuers = public_keys("relay_issuers", &config.relay_issuers)?;
        Ok(core)
    }
}

fn key_bytes(keys: &[sixcast::crypto::PublicKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|key| key.to_bytes().to_vec()).collect()
}

/// 32-byte public keys, each checked; errors name the field and the index.
fn public_keys(field: &str, keys: &[Vec<u8>]) -> Result<Vec<sixcast::crypto::PublicKey>> {
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            let bytes = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| {
                SixcastError::InvalidConfig(format!(
                    "{field}[{index}] is {} bytes, not a 32-byte public key",
                    key.len()
                ))
            })?;
            sixcast::crypto::PublicKey::from_bytes(bytes).map_err(|err| {
                SixcastError::InvalidConfig(format!("{field}[{index}]: {}", err.message()))
            })
        })
        .collect()
}

fn widen(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Converts a size to `usize`, which only fails on 32-bit targets for sizes no host can hold.
fn narrow(value: u64, field: &str) -> Result<usize> {
    usize::try_from(value).map_err(|_| {
        SixcastError::InvalidConfig(format!(
            "{field} {value} does not fit this platform's memory"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_record_converts_to_the_core_default() {
        let core = sixcast::Config::try_from(&default_config()).unwrap();
        assert_eq!(core, sixcast::Config::default());
        validate_config(default_config()).unwrap();
    }

    #[test]
    fn every_field_reaches_the_core() {
        let record = Config {
            profile: "embedded-rp".into(),
            rp: Some("2001:db8:5c::5/64".into()),
            scope: "site".into(),
            port: Some(7000),
            interfaces: vec!["eth0".into()],
            hop_limit: 3,
            loopback: false,
            max_datagram_size: 1400,
            max_message_size: 4096,
            linger_ms: 0,
            packing: false,
            queue_capacity: 10,
            queue_bytes: 1 << 16,
            recv_buffer: 1 << 16,
            send_rate_messages: 1000,
            send_rate_bytes: 1 << 20,
            reliable: true,
            reassembly_timeout_ms: 250,
            reassembly_memory: 1 << 20,
            stratum0: Some("[2001:db8::1]:6447".into()),
            domain: Some("example.org".into()),
            dns_server: Some("[2001:db8::53]:5353".into()),
            probe_timeout_ms: 500,
            probe_interval_ms: 10_000,
            relay_keys: vec![
                sixcast::crypto::SigningKey::from_seed([7; 32])
                    .public_key()
                    .to_bytes()
                    .to_vec(),
            ],
            relay_issuers: vec![
                sixcast::crypto::SigningKey::from_seed([9; 32])
                    .public_key()
                    .to_bytes()
                    .to_vec(),
            ],
        };
        let core = sixcast::Config::try_from(&record).unwrap();
        core.validate().unwrap();
        assert_eq!(Config::from(&core), record);
    }

    #[test]
    fn probe_interval_round_trips_and_must_be_at_least_the_timeout() {
        let record = Config {
            probe_timeout_ms: 1500,
            probe_interval_ms: 45_250,
            ..default_config()
        };
        let core = sixcast::Config::try_from(&record).unwrap();
        assert_eq!(core.probe_interval, Duration::from_millis(45_250));
        assert_eq!(Config::from(&core), record);
        validate_config(record).unwrap();
        let too_short = Config {
            probe_timeout_ms: 3000,
            probe_interval_ms: 2000,
            ..default_config()
        };
        assert!(matches!(
            validate_config(too_short),
            Err(SixcastError::InvalidConfig(message)) if message.contains("probe_interval")
        ));
    }

    #[test]
    fn reliable_round_trips_and_needs_the_sixcast_header() {
        assert!(!default_config().reliable);
        let record = Config {
            reliable: true,
            ..default_config()
        };
        let core = sixcast::Config::try_from(&record).unwrap();
        assert!(core.reliable);
        assert_eq!(Config::from(&core), record);
        validate_config(record).unwrap();
        let librecast = Config {
            profile: "librecast".into(),
            reliable: true,
            ..default_config()
        };
        assert!(matches!(
            validate_config(librecast),
            Err(SixcastError::InvalidConfig(message)) if message.contains("reliable")
        ));
    }

    #[test]
    fn bad_text_fields_fail_with_the_core_kinds() {
        let with_scope = Config {
            scope: "galaxy".into(),
            ..default_config()
        };
        assert!(matches!(
            validate_config(with_scope),
            Err(SixcastError::InvalidConfig(_))
        ));
        let with_bad_rp = Config {
            profile: "embedded-rp".into(),
            rp: Some("not-an-address/64".into()),
            ..default_config()
        };
        assert!(matches!(
            validate_config(with_bad_rp),
            Err(SixcastError::InvalidAddress(_))
        ));
    }

    #[test]
    fn stratum0_must_be_a_unicast_socket_address() {
        for bad in [
            "2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]:65536",
            "192.0.2.1:6447",
            "",
            "[ff1e::1]:6447",
            "[2001:db8::1]:0",
        ] {
            let config = Config {
                stratum0: Some(bad.into()),
                ..default_config()
            };
            assert!(
                matches!(validate_config(config), Err(SixcastError::InvalidConfig(m)) if m.contains("stratum0")),
                "{bad}"
            );
        }
    }

    #[test]
    fn domain_and_dns_server_are_checked_by_the_core() {
        let record = Config {
            domain: Some("example.org".into()),
            dns_server: Some("2001:db8::53".into()),
            ..default_config()
        };
        let core = sixcast::Config::try_from(&record).unwrap();
        assert_eq!(core.dns_server, Some("[2001:db8::53]:53".parse().unwrap()));
        validate_config(record).unwrap();
        let cases = [
            (Some(""), None, "domain"),
            (Some("a..b"), None, "domain"),
            (Some("example.org"), Some("resolver.example"), "dns_server"),
            (Some("example.org"), Some("[::]:53"), "dns_server"),
            (None, Some("2001:db8::53"), "dns_server"),
        ];
        for (domain, dns_server, named) in cases {
            let config = Config {
                domain: domain.map(Into::into),
                dns_server: dns_server.map(Into::into),
                ..default_config()
            };
            assert!(
                matches!(validate_config(config), Err(SixcastError::InvalidConfig(m)) if m.contains(named)),
                "{domain:?} {dns_server:?}"
            );
        }
    }

    #[test]
    fn relay_keys_must_be_valid_public_keys() {
        let weak = {
            let mut bytes = vec![0; 32];
            bytes[0] = 1;
            bytes
        };
        for (bad, named) in [(weak.clone(), "relay_keys[0]"), (vec![0; 31], "31 bytes")] {
            let config = Config {
                relay_keys: vec![bad],
                ..default_config()
            };
            assert!(
                matches!(validate_config(config), Err(SixcastError::InvalidConfig(m)) if m.contains(named)),
                "{named}"
            );
        }
        let config = Config {
            relay_issuers: vec![weak],
            ..default_config()
        };
        assert!(matches!(
            validate_config(config),
            Err(SixcastError::InvalidConfig(m)) if m.contains("relay_issuers[0]")
        ));
    }
}
