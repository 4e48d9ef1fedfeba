//! [`SixcastConfig`]: a context's settings, set and read field by field as text, with the
//! field names every binding shares (the snake_case names of the conformance vectors).

use std::{ffi::c_char, time::Duration};

use sixcast::crypto::PublicKey;

use crate::{
    error::{Failure, Result, SixcastError, SixcastStatus, guard},
    text,
};

/// Settings of a context. Start from `sixcast_config_new` (the core's defaults), change fields
/// with `sixcast_config_set`, and free with `sixcast_config_free`. Not thread-safe: one thread
/// at a time may change it.
pub struct SixcastConfig {
    core: sixcast::Config,
    /// Kept as text until the configuration is used, so that `profile` and `rp` can be set in
    /// either order.
    profile: String,
    rp: Option<String>,
}

impl Default for SixcastConfig {
    fn default() -> Self {
        let core = sixcast::Config::default();
        Self {
            profile: core.profile.name().to_owned(),
            rp: None,
            core,
        }
    }
}

impl SixcastConfig {
    /// The core's configuration, with the profile parsed; range checks are left to
    /// `Config::validate`, which opening a context runs.
    pub(crate) fn to_core(&self) -> Result<sixcast::Config> {
        let mut core = self.core.clone();
        core.profile = sixcast::addr::parse_profile(&self.profile, self.rp.as_deref())?;
        Ok(core)
    }

    fn set(&mut self, field: &str, value: Option<&str>) -> Result<()> {
        let core = &mut self.core;
        match field {
            "profile" => self.profile = required(field, value)?.to_owned(),
            "rp" => self.rp = value.map(str::to_owned),
            "scope" => core.scope = required(field, value)?.parse()?,
            "port" => core.port = value.map(|text| number(field, text)).transpose()?,
            "interfaces" => core.interfaces = list(value).map(str::to_owned).collect(),
            "hop_limit" => core.hop_limit = number(field, required(field, value)?)?,
            "loopback" => core.loopback = boolean(field, value)?,
            "packing" => core.packing = boolean(field, value)?,
            "reliable" => core.reliable = boolean(field, value)?,
            "max_datagram_size" => core.max_datagram_size = number(field, required(field, value)?)?,
            "max_message_size" => core.max_message_size = number(field, required(field, value)?)?,
            "queue_capacity" => core.queue_capacity = number(field, required(field, value)?)?,
            "queue_bytes" => core.queue_bytes = number(field, required(field, value)?)?,
            "recv_buffer" => core.recv_buffer = number(field, required(field, value)?)?,
            "send_rate_messages" => {
                core.send_rate_messages = number(field, required(field, value)?)?;
            }
            "send_rate_bytes" => core.send_rate_bytes = number(field, required(field, value)?)?,
            "reassembly_memory" => core.reassembly_memory = number(field, required(field, value)?)?,
            "linger_ms" => core.linger = millis(field, value)?,
            "reassembly_timeout_ms" => core.reassembly_timeout = millis(field, value)?,
            "probe_timeout_ms" => core.probe_timeout = millis(field, value)?,
            "probe_interval_ms" => core.probe_interval = millis(field, value)?,
            "stratum0" => {
                core.stratum0 = value
                    .map(|text| {
                        text.parse().map_err(|_| {
                            invalid(format!(
                                "stratum0 {text:?} is not an IPv6 socket address \"[address]:port\""
                            ))
                        })
                    })
                    .transpose()?;
            }
            "domain" => core.domain = value.map(str::to_owned),
            "dns_server" => {
                core.dns_server = value.map(sixcast::locate::parse_dns_server).transpose()?;
            }
            "relay_keys" => core.relay_keys = public_keys(field, value)?,
            "relay_issuers" => core.relay_issuers = public_keys(field, value)?,
            _ => return Err(invalid(format!("{field:?} is not a configuration field"))),
        }
        Ok(())
    }

    fn add(&mut self, field: &str, item: &str) -> Result<()> {
        let core = &mut self.core;
        match field {
            "interfaces" => core.interfaces.push(item.to_owned()),
            "relay_keys" => core
                .relay_keys
                .push(public_key(field, core.relay_keys.len(), item)?),
            "relay_issuers" => {
                core.relay_issuers
                    .push(public_key(field, core.relay_issuers.len(), item)?);
            }
            _ => return Err(invalid(format!("{field:?} is not a list field"))),
        }
        Ok(())
    }

    fn get(&self, field: &str) -> Result<Option<String>> {
        let core = &self.core;
        Ok(match field {
            "profile" => Some(self.profile.clone()),
            "rp" => self.rp.clone(),
            "scope" => Some(core.scope.name().to_owned()),
            "port" => core.port.map(|port| port.to_string()),
            "interfaces" => Some(core.interfaces.join(",")),
            "hop_limit" => Some(core.hop_limit.to_string()),
            "loopback" => Some(core.loopback.to_string()),
            "packing" => Some(core.packing.to_string()),
            "reliable" => Some(core.reliable.to_string()),
            "max_datagram_size" => Some(core.max_datagram_size.to_string()),
            "max_message_size" => Some(core.max_message_size.to_string()),
            "queue_capacity" => Some(core.queue_capacity.to_string()),
            "queue_bytes" => Some(core.queue_bytes.to_string()),
            "recv_buffer" => Some(core.recv_buffer.to_string()),
            "send_rate_messages" => Some(core.send_rate_messages.to_string()),
            "send_rate_bytes" => Some(core.send_rate_bytes.to_string()),
            "reassembly_memory" => Some(core.reassembly_memory.to_string()),
            "linger_ms" => Some(core.linger.as_millis().to_string()),
            "reassembly_timeout_ms" => Some(core.reassembly_timeout.as_millis().to_string()),
            "probe_timeout_ms" => Some(core.probe_timeout.as_millis().to_string()),
            "probe_interval_ms" => Some(core.probe_interval.as_millis().to_string()),
            "stratum0" => core.stratum0.map(|stratum0| stratum0.to_string()),
            "domain" => core.domain.clone(),
            "dns_server" => core.dns_server.map(|server| server.to_string()),
            "relay_keys" => Some(key_list(&core.relay_keys)),
            "relay_issuers" => Some(key_list(&core.relay_issuers)),
            _ => return Err(invalid(format!("{field:?} is not a configuration field"))),
        })
    }
}

fn invalid(message: String) -> Failure {
    sixcast::Error::new(sixcast::ErrorKind::InvalidConfig, message).into()
}

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str> {
    value.ok_or_else(|| invalid(format!("{field} cannot be NULL")))
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<T> {
    text.trim()
        .parse()
        .map_err(|_| invalid(format!("{field} {text:?} is not a number in range")))
}

fn millis(field: &str, value: Option<&str>) -> Result<Duration> {
    Ok(Duration::from_millis(number(
        field,
        required(field, value)?,
    )?))
}

fn boolean(field: &str, value: Option<&str>) -> Result<bool> {
    match required(field, value)? {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(invalid(format!("{field} {other:?} is not true or false"))),
    }
}

/// The items of a comma-separated list; NULL and "" are the empty list.
fn list(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Public keys as comma-separated hex, 64 digits each; errors name the field and the index.
fn public_keys(field: &str, value: Option<&str>) -> Result<Vec<PublicKey>> {
    list(value)
        .enumerate()
        .map(|(index, hex_key)| public_key(field, index, hex_key))
        .collect()
}

fn public_key(field: &str, index: usize, hex_key: &str) -> Result<PublicKey> {
    let mut bytes = [0; 32];
    hex::decode_to_slice(hex_key, &mut bytes).map_err(|_| {
        invalid(format!(
            "{field}[{index}] is not 64 hex digits (a public key)"
        ))
    })?;
    PublicKey::from_bytes(bytes)
        .map_err(|err| invalid(format!("{field}[{index}]: {}", err.message())))
}

fn key_list(keys: &[PublicKey]) -> String {
    let hex_keys: Vec<_> = keys.iter().map(|key| hex::encode(key.to_bytes())).collect();
    hex_keys.join(",")
}

/// A configuration with the core's defaults. Free it with `sixcast_config_free`.
#[unsafe(no_mangle)]
pub extern "C" fn sixcast_config_new() -> *mut SixcastConfig {
    Box::into_raw(Box::default())
}

/// Frees a configuration. NULL is ignored.
///
/// # Safety
/// `config` is NULL or a configuration from `sixcast_config_new`, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_config_free(config: *mut SixcastConfig) {
    if !config.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(config) });
    }
}

/// Sets `field` (such as `"port"`, `"stratum0"`, `"interfaces"`) from text: decimal numbers,
/// `true`/`false`, comma-separated lists (interfaces; relay keys as 64 hex digits each),
/// durations in milliseconds for the `*_ms` fields. NULL resets an optional field (`port`,
/// `rp`, `stratum0`, `domain`, `dns_server`) to none. Fails with `SIXCAST_STATUS_INVALID_CONFIG`
/// for an unknown field or a value that does not parse; ranges are checked by
/// `sixcast_config_validate` and when a context opens.
///
/// # Safety
/// `config` is a live configuration; `field` and `value` are NULL or NUL-terminated strings;
/// `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_config_set(
    config: *mut SixcastConfig,
    field: *const c_char,
    value: *const c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let config = unsafe { config.as_mut() }
            .ok_or_else(|| Failure::invalid_argument("config is NULL"))?;
        // SAFETY: per the contract above.
        let (field, value) = unsafe {
            (
                text::arg(field, "field")?,
                text::optional_arg(value, "value")?,
            )
        };
        config.set(field, value)
    })
}

/// Appends `item` to the list field `field` (`interfaces`, `relay_keys` or `relay_issuers`),
/// taken as it is: unlike the comma-separated form of `sixcast_config_set`, an item may be
/// empty or hold a comma (and is then refused when the configuration is validated).
///
/// # Safety
/// `config` is a live configuration; `field` and `item` are NUL-terminated strings;
/// `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_config_add(
    config: *mut SixcastConfig,
    field: *const c_char,
    item: *const c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let config = unsafe { config.as_mut() }
            .ok_or_else(|| Failure::invalid_argument("config is NULL"))?;
        // SAFETY: per the contract above.
        let (field, item) = unsafe { (text::arg(field, "field")?, text::arg(item, "item")?) };
        config.add(field, item)
    })
}

/// Reads `field` as text, in the form `sixcast_config_set` takes, into `*value_out` (free it
/// with `sixcast_string_free`); NULL when an optional field is none.
///
/// # Safety
/// `config` is a live configuration; `field` is a NUL-terminated string; `value_out` is
/// writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_config_get(
    config: *const SixcastConfig,
    field: *const c_char,
    value_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let (config, field) =
            unsafe { (text::handle(config, "config")?, text::arg(field, "field")?) };
        // SAFETY: per the contract above.
        unsafe { text::store_text(value_out, config.get(field)?, "value_out") }
    })
}

/// Checks every field as opening a context would, without opening one: fails with
/// `SIXCAST_STATUS_INVALID_CONFIG` (or `INVALID_ADDRESS` for a bad RP) naming the field.
///
/// # Safety
/// `config` is a live configuration; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_config_validate(
    config: *const SixcastConfig,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let config = unsafe { text::handle(config, "config") }?;
        Ok(config.to_core()?.validate()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [&str; 26] = [
        "profile",
        "rp",
        "scope",
        "port",
        "interfaces",
        "hop_limit",
        "loopback",
        "packing",
        "reliable",
        "max_datagram_size",
        "max_message_size",
        "queue_capacity",
        "queue_bytes",
        "recv_buffer",
        "send_rate_messages",
        "send_rate_bytes",
        "reassembly_memory",
        "linger_ms",
        "reassembly_timeout_ms",
        "probe_timeout_ms",
        "probe_interval_ms",
        "stratum0",
        "domain",
        "dns_server",
        "relay_keys",
        "relay_issuers",
    ];

    #[test]
    fn every_field_reads_back_what_it_was_set_to() {
        let key = sixcast::crypto::SigningKey::from_seed([7; 32]).public_key();
        let values = [
            "embedded-rp",
            "2001:db8:5c::5/64",
            "site",
            "7000",
            "eth0,eth1",
            "3",
            "false",
            "false",
            "true",
            "1400",
            "4096",
            "10",
            "65536",
            "65536",
            "1000",
            "2000",
            "1048576",
            "0",
            "250",
            "500",
            "10000",
            "[2001:db8::1]:6447",
            "example.org",
            "[2001:db8::53]:5353",
        ];
        let mut config = SixcastConfig::default();
        for (field, value) in FIELDS.iter().zip(values) {
            config.set(field, Some(value)).unwrap();
            assert_eq!(
                config.get(field).unwrap().as_deref(),
                Some(value),
                "{field}"
            );
        }
        let key_hex = hex::encode(key.to_bytes());
        for field in ["relay_keys", "relay_issuers"] {
            config.set(field, Some(&key_hex)).unwrap();
            assert_eq!(config.get(field).unwrap(), Some(key_hex.clone()));
        }
        config.to_core().unwrap().validate().unwrap();
    }

    #[test]
    fn the_default_is_the_core_default_and_every_field_has_a_name() {
        let config = SixcastConfig::default();
        assert_eq!(config.to_core().unwrap(), sixcast::Config::default());
        for field in FIELDS {
            config.get(field).unwrap();
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut config = SixcastConfig::default();
        for (field, value) in [
            ("port", "65536"),
            ("hop_limit", "-1"),
            ("loopback", "yes"),
            ("reliable", "on"),
            ("stratum0", "192.0.2.1:6447"),
            ("relay_keys", "00"),
            ("scope", "galaxy"),
            ("linger_ms", "soon"),
        ] {
            let failure = config.set(field, Some(value)).unwrap_err();
            assert_eq!(failure.status(), SixcastStatus::InvalidConfig, "{field}");
        }
        config.add("interfaces", "").unwrap();
        assert_eq!(
            config.to_core().unwrap().validate().unwrap_err().kind(),
            sixcast::ErrorKind::InvalidConfig
        );
        config.set("interfaces", None).unwrap();
        assert_eq!(
            config.add("port", "1").unwrap_err().status(),
            SixcastStatus::InvalidConfig
        );
        let failure = config.set("colour", Some("blue")).unwrap_err();
        assert_eq!(failure.status(), SixcastStatus::InvalidConfig);
        assert_eq!(config.to_core().unwrap(), sixcast::Config::default());
    }

    #[test]
    fn reliable_reaches_the_core_which_wants_the_sixcast_header() {
        let mut config = SixcastConfig::default();
        assert_eq!(config.get("reliable").unwrap().as_deref(), Some("false"));
        config.set("reliable", Some("1")).unwrap();
        assert_eq!(config.get("reliable").unwrap().as_deref(), Some("true"));
        assert!(config.to_core().unwrap().reliable);
        config.to_core().unwrap().validate().unwrap();
        config.set("profile", Some("librecast")).unwrap();
        let error = config.to_core().unwrap().validate().unwrap_err();
        assert_eq!(error.kind(), sixcast::ErrorKind::InvalidConfig);
        assert!(error.message().contains("reliable"), "{error}");
        config.set("reliable", Some("false")).unwrap();
        config.to_core().unwrap().validate().unwrap();
    }
}
