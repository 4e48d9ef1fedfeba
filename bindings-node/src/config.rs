//! Context options: the core [`Config`] in camelCase, checked the way JavaScript callers need
//! (unknown keys, fractions and negative numbers are errors, not silently truncated).

use std::time::Duration;

use napi::{
    Env, Result,
    bindgen_prelude::{FromNapiValue, JsValue, Object, Uint8Array},
};
use napi_derive::napi;
use sixcast::{Config, ErrorKind, Scope, addr, crypto::PublicKey};

use crate::error::OrThrow;

/// Options of a `Context`, mirroring the core `Config`; every field is optional and defaults to
/// the core's default.
#[napi(object, object_to_js = false)]
pub struct ContextOptions {
    /// How names map to groups: `sixcast` (default), `ssm`, `embedded-rp` (needs `rp`) or
    /// `librecast`.
    pub profile: Option<String>,
    /// The rendezvous point of the `embedded-rp` profile, as `address/prefix-length`.
    pub rp: Option<String>,
    /// `link`, `site`, `org` or `global` (default).
    pub scope: Option<String>,
    /// UDP port; the profile's default (6446, or 4242 for librecast) when unset.
    pub port: Option<f64>,
    /// Interface names to join and send on; every multicast-capable interface when unset.
    pub interfaces: Option<Vec<String>>,
    /// Hop limit of sent datagrams (1 keeps them on the link; default 64).
    pub hop_limit: Option<f64>,
    /// Whether other sockets of this host hear what this context sends (default true).
    pub loopback: Option<bool>,
    /// Largest UDP payload sent, in bytes (default 1232).
    pub max_datagram_size: Option<f64>,
    /// Largest message accepted and reassembled, in bytes (default 1 MiB).
    pub max_message_size: Option<f64>,
    /// How long sent messages may wait to leave together (packed, in batches), in ms (default 1;
    /// 0 sends at once).
    pub linger_ms: Option<f64>,
    /// Whether small messages share datagrams (default true); off, each message has datagrams of
    /// its own.
    pub packing: Option<bool>,
    /// Received messages held per channel until taken (default 65536).
    pub queue_capacity: Option<f64>,
    /// Payload bytes held per channel until taken (default 64 MiB).
    pub queue_bytes: Option<f64>,
    /// Kernel receive buffer requested for the socket, in bytes (default 8 MiB).
    pub recv_buffer: Option<f64>,
    /// Messages per second the context sends at most, over its channels (default 0: no limit);
    /// `send` waits for its turn beyond it.
    pub send_rate_messages: Option<f64>,
    /// Payload bytes per second the context sends at most (default 0: no limit).
    pub send_rate_bytes: Option<f64>,
    /// Whether the context's channels send reliably (default false): receivers ask for what
    /// they miss and are repaired, and what cannot be repaired in time is reported lost. Needs a
    /// profile with the sixcast header (not `librecast`).
    pub reliable: Option<bool>,
    /// How long pieces of a fragmented message wait for the rest, in ms (default 5000).
    pub reassembly_timeout_ms: Option<f64>,
    /// Memory bound for partly received messages per channel, in bytes (default 32 MiB).
    pub reassembly_memory: Option<f64>,
    /// The core's Stratum 0 as `[address]:port`; when set, the context probes whether native
    /// multicast reaches the core and uses a relay where it does not. Unset: no probing.
    pub stratum0: Option<String>,
    /// A domain whose `_sixcast._udp.<domain>` SRV records name Stratum 0, used when
    /// `stratum0` is unset.
    pub domain: Option<String>,
    /// The DNS server asked for `domain`, `address` or `[address]:port` (port 53 when left
    /// out). Unset: the system's resolvers.
    pub dns_server: Option<String>,
    /// How long a probe of native reachability may take, in ms (default 2000).
    pub probe_timeout_ms: Option<f64>,
    /// How often the probe is repeated once a path is settled, in ms (default 30000; at least
    /// `probeTimeoutMs`).
    pub probe_interval_ms: Option<f64>,
    /// Pinned relay identity keys, 32 bytes each (`PublicKey.toBytes()`): tunnel only through a
    /// relay that proves one of them. Unset or empty: any relay.
    pub relay_keys: Option<Vec<Uint8Array>>,
    /// Trusted relay voucher issuers, 32-byte public keys: also tunnel through relays one of
    /// them vouched for.
    pub relay_issuers: Option<Vec<Uint8Array>>,
}

/// The keys of [`ContextOptions`] as JavaScript spells them; any other key is a mistake.
const OPTION_KEYS: [&str; 26] = [
    "profile",
    "rp",
    "scope",
    "port",
    "interfaces",
    "hopLimit",
    "loopback",
    "maxDatagramSize",
    "maxMessageSize",
    "lingerMs",
    "packing",
    "queueCapacity",
    "queueBytes",
    "recvBuffer",
    "sendRateMessages",
    "sendRateBytes",
    "reliable",
    "reassemblyTimeoutMs",
    "reassemblyMemory",
    "stratum0",
    "domain",
    "dnsServer",
    "probeTimeoutMs",
    "probeIntervalMs",
    "relayKeys",
    "relayIssuers",
];

/// Checks options the way `new Context(options)` does, without opening anything.
#[napi(ts_args_type = "options?: ContextOptions")]
pub fn validate_options(env: Env, options: Option<Object>) -> Result<()> {
    config_from_js(&env, options)?.validate().or_throw(&env)
}

/// The configuration `options` describe (not yet validated as a whole).
pub(crate) fn config_from_js(env: &Env, options: Option<Object>) -> Result<Config> {
    let Some(object) = options else {
        return Ok(Config::default());
    };
    if let Some(unknown) = Object::keys(&object)?
        .into_iter()
        .find(|key| !OPTION_KEYS.contains(&key.as_str()))
    {
        return Err(invalid(format!(
            "unknown option {unknown:?}; the options are {}",
            OPTION_KEYS.join(", ")
        )))
        .or_throw(env);
    }
    let options = ContextOptions::from_unknown(object.to_unknown())
        .map_err(|err| {
            invalid(format!(
                "the options do not have the right types: {}",
                err.reason
            ))
        })
        .or_throw(env)?;
    apply(options).or_throw(env)
}

fn apply(options: ContextOptions) -> sixcast::Result<Config> {
    let mut config = Config::default();
    config.profile = addr::parse_profile(
        options.profile.as_deref().unwrap_or(config.profile.name()),
        options.rp.as_deref(),
    )?;
    if let Some(scope) = options.scope {
        config.scope = scope.parse::<Scope>()?;
    }
    if let Some(port) = options.port {
        config.port = Some(whole("port", port, u16::MAX)?);
    }
    if let Some(interfaces) = options.interfaces {
        config.interfaces = interfaces;
    }
    if let Some(hop_limit) = options.hop_limit {
        config.hop_limit = whole("hopLimit", hop_limit, u8::MAX)?;
    }
    if let Some(loopback) = options.loopback {
        config.loopback = loopback;
    }
    let sizes = [
        (
            options.max_datagram_size,
            "maxDatagramSize",
            &mut config.max_datagram_size,
        ),
        (
            options.max_message_size,
            "maxMessageSize",
            &mut config.max_message_size,
        ),
        (
            options.queue_capacity,
            "queueCapacity",
            &mut config.queue_capacity,
        ),
        (options.queue_bytes, "queueBytes", &mut config.queue_bytes),
        (options.recv_buffer, "recvBuffer", &mut config.recv_buffer),
        (
            options.reassembly_memory,
            "reassemblyMemory",
            &mut config.reassembly_memory,
        ),
    ];
    for (value, name, field) in sizes {
        if let Some(value) = value {
            *field = whole(name, value, usize::MAX)?;
        }
    }
    let rates = [
        (
            options.send_rate_messages,
            "sendRateMessages",
            &mut config.send_rate_messages,
        ),
        (
            options.send_rate_bytes,
            "sendRateBytes",
            &mut config.send_rate_bytes,
        ),
    ];
    for (value, name, field) in rates {
        if let Some(value) = value {
            *field = whole(name, value, u64::MAX)?;
        }
    }
    if let Some(linger) = options.linger_ms {
        config.linger = millis("lingerMs", linger)?;
    }
    if let Some(packing) = options.packing {
        config.packing = packing;
    }
    if let Some(reliable) = options.reliable {
        config.reliable = reliable;
    }
    if let Some(timeout) = options.reassembly_timeout_ms {
        config.reassembly_timeout = millis("reassemblyTimeoutMs", timeout)?;
    }
    if let Some(stratum0) = options.stratum0 {
        config.stratum0 = Some(stratum0.parse().map_err(|_| {
            invalid(format!(
                "stratum0 {stratum0:?} is not an IPv6 socket address \"[address]:port\""
            ))
        })?);
    }
    config.domain = options.domain;
    if let Some(server) = options.dns_server {
        config.dns_server = Some(sixcast::locate::parse_dns_server(&server)?);
    }
    if let Some(timeout) = options.probe_timeout_ms {
        config.probe_timeout = millis("probeTimeoutMs", timeout)?;
    }
    if let Some(interval) = options.probe_interval_ms {
        config.probe_interval = millis("probeIntervalMs", interval)?;
    }
    if let Some(keys) = options.relay_keys {
        config.relay_keys = public_keys("relayKeys", &keys)?;
    }
    if let Some(issuers) = options.relay_issuers {
        config.relay_issuers = public_keys("relayIssuers", &issuers)?;
    }
    Ok(config)
}

/// 32-byte public keys, each checked; errors name the option and the index.
fn public_keys(name: &str, keys: &[Uint8Array]) -> sixcast::Result<Vec<PublicKey>> {
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            let bytes = <[u8; 32]>::try_from(&key[..]).map_err(|_| {
                invalid(format!(
                    "{name}[{index}] is {} bytes, not a 32-byte public key",
                    key.len()
                ))
            })?;
            PublicKey::from_bytes(bytes)
                .map_err(|err| invalid(format!("{name}[{index}]: {}", err.message())))
        })
        .collect()
}

/// An InvalidConfig error.
pub(crate) fn invalid(message: String) -> sixcast::Error {
    sixcast::Error::new(ErrorKind::InvalidConfig, message)
}

/// `value` as a whole number from 0 to `max` (at most `Number.MAX_SAFE_INTEGER`, beyond which
/// JavaScript numbers are not exact). Fractions are errors, not silently truncated.
pub(crate) fn whole<T>(name: &str, value: f64, max: T) -> sixcast::Result<T>
where
    T: TryFrom<u64>,
    u64: TryFrom<T>,
{
    const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
    let limit = u64::try_from(max).map_or(MAX_SAFE_INTEGER, |max| max.min(MAX_SAFE_INTEGER));
    // In range and without a fraction, so the `as` conversion is exact.
    let in_range = value.fract() == 0.0 && (0.0..=limit as f64).contains(&value);
    match T::try_from(value as u64) {
        Ok(converted) if in_range => Ok(converted),
        _ => Err(invalid(format!(
            "{name} must be a whole number from 0 to {limit}, not {value}"
        ))),
    }
}

/// A duration given in milliseconds (fractions allowed); `None` for `Infinity` or a duration
/// too long to represent, both of which mean "no limit".
pub(crate) fn millis_or_forever(name: &str, value: f64) -> sixcast::Result<Option<Duration>> {
    if value.is_nan() || value < 0.0 {
        return Err(invalid(format!(
            "{name} must be 0 or more milliseconds, not {value}"
        )));
    }
    Ok(Duration::try_from_secs_f64(value / 1000.0).ok())
}

fn millis(name: &str, value: f64) -> sixcast::Result<Duration> {
    millis_or_forever(name, value)?
        .ok_or_else(|| invalid(format!("{name} must be a finite number of milliseconds")))
}
