//! The configuration file (`--config FILE`, TOML): a `[node]` table for the commands that open a
//! context, and `[stratum0]` and `[relay]` tables for the core's services; every key is
//! optional, unknown keys are refused, and a flag given on the command line wins over the file.
//! docs/configuration.md describes every key.

use std::{
    net::{SocketAddr, SocketAddrV6},
    path::{Path, PathBuf},
};

use clap::ValueEnum;
use serde::Deserialize;
use sixcast::ErrorKind;

use crate::choices::{ProfileChoice, ScopeChoice};

/// A configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub(super) node: NodeTable,
    #[serde(default)]
    pub(super) stratum0: Stratum0Table,
    #[serde(default)]
    pub(super) relay: RelayTable,
}

/// `[node]`: what `listen`, `send`, `probe` and `perf` open their context with.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeTable {
    pub(super) profile: Option<String>,
    pub(super) rp: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) interfaces: Option<Vec<String>>,
    pub(super) port: Option<u16>,
    pub(super) hops: Option<u8>,
    pub(super) datagram_size: Option<usize>,
    pub(super) loopback: Option<bool>,
    pub(super) send_rate_messages: Option<u64>,
    pub(super) send_rate_bytes: Option<u64>,
    pub(super) reliable: Option<bool>,
    pub(super) stratum0: Option<SocketAddrV6>,
    pub(super) domain: Option<String>,
    pub(super) dns_server: Option<String>,
    pub(super) relay_keys: Option<Vec<PathBuf>>,
    pub(super) relay_issuers: Option<Vec<PathBuf>>,
}

/// `[stratum0]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Stratum0Table {
    pub(super) listen: Option<SocketAddrV6>,
    pub(super) interfaces: Option<Vec<String>>,
    pub(super) scope: Option<String>,
    pub(super) hops: Option<u8>,
    pub(super) metrics: Option<SocketAddr>,
}

/// `[relay]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RelayTable {
    pub(super) listen: Option<SocketAddrV6>,
    pub(super) interfaces: Option<Vec<String>>,
    pub(super) scope: Option<String>,
    pub(super) hops: Option<u8>,
    pub(super) metrics: Option<SocketAddr>,
    pub(super) ssm_repeater: Option<bool>,
    pub(super) identity: Option<PathBuf>,
    pub(super) voucher: Option<PathBuf>,
    pub(super) max_tunnels: Option<usize>,
    pub(super) max_groups_per_tunnel: Option<usize>,
    pub(super) refresh_secs: Option<u64>,
    pub(super) client_datagrams_per_sec: Option<u64>,
    pub(super) client_bytes_per_sec: Option<u64>,
    pub(super) client_control_per_sec: Option<u64>,
    pub(super) signed_challenges_per_sec: Option<u64>,
}

pub(super) fn invalid(message: String) -> sixcast::Error {
    sixcast::Error::new(ErrorKind::InvalidConfig, message)
}

/// The file at `path`, or an empty one without a path.
pub(super) fn read(path: Option<&Path>) -> sixcast::Result<File> {
    let Some(path) = path else {
        return Ok(File::default());
    };
    let text = std::fs::read_to_string(path).map_err(|err| {
        invalid(format!(
            "cannot read the configuration file {}: {err}",
            path.display()
        ))
    })?;
    parse(&text).map_err(|err| invalid(format!("{}: {err}", path.display())))
}

fn parse(text: &str) -> Result<File, String> {
    toml::from_str(text).map_err(|err| err.to_string().trim().to_owned())
}

/// A fixed choice: the flag if given, else the file's value parsed by its name, else none.
fn choice<T: ValueEnum>(
    flag: Option<T>,
    file: Option<&str>,
    key: &str,
) -> sixcast::Result<Option<T>> {
    match (flag, file) {
        (Some(choice), _) => Ok(Some(choice)),
        (None, Some(name)) => T::from_str(name, false).map(Some).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|variant| Some(variant.to_possible_value()?.get_name().to_owned()))
                .collect();
            invalid(format!("{key} = {name:?}: use one of {}", names.join(", ")))
        }),
        (None, None) => Ok(None),
    }
}

/// The scope: the flag, else the file's `scope`.
pub(super) fn scope(
    flag: Option<ScopeChoice>,
    file: Option<&str>,
) -> sixcast::Result<Option<ScopeChoice>> {
    choice(flag, file, "scope")
}

/// The addressing profile: the flag, else the file's `profile`.
pub(super) fn profile(
    flag: Option<ProfileChoice>,
    file: Option<&str>,
) -> sixcast::Result<Option<ProfileChoice>> {
    choice(flag, file, "profile")
}

/// A repeatable flag's values if any were given, else the file's list.
pub(super) fn list<T: Clone>(flags: &[T], file: Option<Vec<T>>) -> Vec<T> {
    if flags.is_empty() {
        file.unwrap_or_default()
    } else {
        flags.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_every_key_parses() {
        let file = parse(
            r#"
            [node]
            profile = "ssm"
            scope = "site"
            interfaces = ["eth0"]
            port = 7000
            hops = 8
            loopback = false
            send_rate_messages = 1000
            send_rate_bytes = 1048576
            reliable = true
            stratum0 = "[fd5c:c::10]:6447"
            domain = "example.org"
            dns_server = "[fd5c::53]:53"
            relay_keys = ["/etc/sixcast/relay.pub"]
            relay_issuers = ["/etc/sixcast/issuer.pub"]

            [stratum0]
            listen = "[::]:6447"
            interfaces = ["eth0"]
            scope = "site"
            hops = 4
            metrics = "[::1]:9464"

            [relay]
            listen = "[fd5c:c::21]:6500"
            interfaces = ["eth0", "eth1"]
            scope = "org"
            hops = 8
            metrics = "127.0.0.1:9465"
            ssm_repeater = false
            identity = "/etc/sixcast/relay.key"
            voucher = "/etc/sixcast/relay.voucher"
            max_tunnels = 10
            max_groups_per_tunnel = 16
            refresh_secs = 20
            client_datagrams_per_sec = 1000
            client_bytes_per_sec = 1048576
            client_control_per_sec = 5
            signed_challenges_per_sec = 100
            "#,
        )
        .unwrap();
        assert_eq!(file.relay.max_tunnels, Some(10));
        assert_eq!(file.relay.listen.map(|listen| listen.port()), Some(6500));
        assert_eq!(file.stratum0.scope.as_deref(), Some("site"));
        assert_eq!(file.node.port, Some(7000));
        assert_eq!(file.node.loopback, Some(false));
        assert_eq!(file.node.send_rate_messages, Some(1000));
        assert_eq!(file.node.reliable, Some(true));
        assert!(parse("").is_ok(), "every key is optional");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, mention) in [
            ("[relay]\nmax_tunels = 3", "max_tunels"),
            ("[relay]\nmax_tunnels = \"many\"", "max_tunnels"),
            ("[relay]\nlisten = \"nowhere\"", "listen"),
            ("[node]\nhops = 300", "hops"),
            ("[gateway]\nx = 1", "gateway"),
            ("[relay", "relay"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(mention), "{text:?}: {err}");
        }
        let err = scope(None, Some("galaxy")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.to_string().contains("galaxy") && err.to_string().contains("global"),
            "{err}"
        );
        assert_eq!(
            scope(Some(ScopeChoice::Site), Some("galaxy")).unwrap(),
            Some(ScopeChoice::Site)
        );
        assert_eq!(
            profile(None, Some("embedded-rp")).unwrap(),
            Some(ProfileChoice::EmbeddedRp)
        );
        assert!(profile(None, Some("nope")).is_err());
    }
}
