//! `sixcast stratum0` and `sixcast relay`: the core's services, configured by flags and the
//! configuration file's `[stratum0]` and `[relay]` tables (see [`settings`]), serving metrics on
//! request, and stopping cleanly on SIGTERM or Ctrl-C.

use std::{
    net::{SocketAddr, SocketAddrV6},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use clap::Args;
use parking_lot::Mutex;
use sixcast::{
    discovery::{Stratum0, Stratum0Config},
    relay::{Relay, RelayConfig},
};

use crate::{choices::ScopeChoice, keys, metrics, settings};

/// Options that both services take.
#[derive(Args)]
pub(super) struct CoreSide {
    /// A TOML file with the service's settings (its `[stratum0]` or `[relay]` table); flags
    /// given here win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Core interface to multicast on (repeatable); default: every multicast interface.
    #[arg(long = "iface")]
    interfaces: Vec<String>,
    /// Scope of the probe and relay groups [default: global].
    #[arg(long, value_enum)]
    scope: Option<ScopeChoice>,
    /// Hop limit of what the service multicasts [default: 64].
    #[arg(long = "hops")]
    hop_limit: Option<u8>,
    /// Serve the service's counters for Prometheus at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
}

/// `sixcast relay`'s own options.
#[derive(Args)]
pub(super) struct RelayOptions {
    /// Address and port to accept tunnels on [default: [::]:6448].
    #[arg(long)]
    listen: Option<SocketAddrV6>,
    /// Serve as an SSM repeater: carry channels as source-specific multicast from this host
    /// instead of down tunnels, for networks that route SSM but not any-source.
    #[arg(long)]
    ssm_repeater: bool,
    /// The relay's identity key (from `sixcast keygen --signing`): sign the challenges of nodes
    /// that pin its public key (`--relay-key`).
    #[arg(long, value_name = "KEY_FILE")]
    identity: Option<PathBuf>,
    /// A voucher for the identity key (from `sixcast voucher`), presented to nodes that trust
    /// its issuer (`--relay-issuer`).
    #[arg(long, value_name = "TOKEN_FILE")]
    voucher: Option<PathBuf>,
    /// Most tunnel clients served at once; more are refused [default: 1024].
    #[arg(long)]
    max_tunnels: Option<usize>,
    /// Most datagrams per second one client may send up its tunnel; 0: no limit
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    client_datagrams_per_sec: Option<u64>,
    /// Most bytes per second one client may send up its tunnel; 0: no limit [default: 16 MiB].
    #[arg(long, value_name = "BYTES")]
    client_bytes_per_sec: Option<u64>,
    /// Most control messages per second from one client; 0: no limit [default: 50].
    #[arg(long, value_name = "N")]
    client_control_per_sec: Option<u64>,
}

pub(super) fn run_stratum0(
    listen: Option<SocketAddrV6>,
    core: &CoreSide,
) -> sixcast::Result<ExitCode> {
    let file = settings::read(core.config.as_deref())?.stratum0;
    let mut config = Stratum0Config::default();
    if let Some(listen) = listen.or(file.listen) {
        config.listen = listen;
    }
    config.interfaces = settings::list(&core.interfaces, file.interfaces);
    if let Some(scope) = settings::scope(core.scope, file.scope.as_deref())? {
        config.scope = scope.into();
    }
    if let Some(hops) = core.hop_limit.or(file.hops) {
        config.hop_limit = hops;
    }
    serve(Stratum0::spawn(config)?, core.metrics.or(file.metrics))
}

pub(super) fn run_relay(options: &RelayOptions, core: &CoreSide) -> sixcast::Result<ExitCode> {
    let file = settings::read(core.config.as_deref())?.relay;
    let mut config = RelayConfig::default();
    if let Some(listen) = options.listen.or(file.listen) {
        config.listen = listen;
    }
    config.interfaces = settings::list(&core.interfaces, file.interfaces);
    if let Some(scope) = settings::scope(core.scope, file.scope.as_deref())? {
        config.scope = scope.into();
    }
    if let Some(hops) = core.hop_limit.or(file.hops) {
        config.hop_limit = hops;
    }
    config.ssm_repeater = options.ssm_repeater || file.ssm_repeater.unwrap_or(false);
    let identity = options.identity.as_deref().or(file.identity.as_deref());
    let voucher = options.voucher.as_deref().or(file.voucher.as_deref());
    if voucher.is_some() && identity.is_none() {
        return Err(settings::invalid(
            "a voucher needs the relay's identity key (identity)".into(),
        ));
    }
    config.identity = identity.map(keys::signing_key).transpose()?;
    config.voucher = voucher.map(keys::token).transpose()?;
    let limits = [
        (
            &mut config.max_tunnels,
            options.max_tunnels.or(file.max_tunnels),
        ),
        (
            &mut config.max_groups_per_tunnel,
            file.max_groups_per_tunnel,
        ),
    ];
    for (setting, value) in limits {
        if let Some(value) = value {
            *setting = value;
        }
    }
    let rates = [
        (
            &mut config.client_datagrams_per_sec,
            options
                .client_datagrams_per_sec
                .or(file.client_datagrams_per_sec),
        ),
        (
            &mut config.client_bytes_per_sec,
            options.client_bytes_per_sec.or(file.client_bytes_per_sec),
        ),
        (
            &mut config.client_control_per_sec,
            options
                .client_control_per_sec
                .or(file.client_control_per_sec),
        ),
        (
            &mut config.signed_challenges_per_sec,
            file.signed_challenges_per_sec,
        ),
    ];
    for (setting, value) in rates {
        if let Some(value) = value {
            *setting = value;
        }
    }
    if let Some(seconds) = file.refresh_secs {
        if seconds == 0 {
            return Err(settings::invalid("refresh_secs must be at least 1".into()));
        }
        config.refresh = Duration::from_secs(seconds);
    }
    serve(Relay::spawn(config)?, core.metrics.or(file.metrics))
}

/// What [`serve`] needs of a running service.
trait Service: Send + 'static {
    /// The service's name in what it prints.
    const NAME: &'static str;
    fn port(&self) -> u16;
    fn figures(&self) -> Vec<metrics::Figure>;
    /// Stops the service; a relay first closes its tunnels, so that its clients fail over to a
    /// spare at once.
    fn close(&mut self);
}

impl Service for Stratum0 {
    const NAME: &'static str = "stratum 0";

    fn port(&self) -> u16 {
        Self::port(self)
    }

    fn figures(&self) -> Vec<metrics::Figure> {
        metrics::stratum0_figures(&self.stats())
    }

    fn close(&mut self) {
        Self::close(self);
    }
}

impl Service for Relay {
    const NAME: &'static str = "relay";

    fn port(&self) -> u16 {
        Self::port(self)
    }

    fn figures(&self) -> Vec<metrics::Figure> {
        metrics::relay_figures(&self.stats())
    }

    fn close(&mut self) {
        Self::close(self);
    }
}

/// Serves `service` (and its metrics at `metrics_address`) until SIGTERM or SIGINT, then stops
/// it.
fn serve<S: Service>(service: S, metrics_address: Option<SocketAddr>) -> sixcast::Result<ExitCode> {
    let service = Arc::new(Mutex::new(service));
    if let Some(address) = metrics_address {
        let service = Arc::clone(&service);
        metrics::serve(address, move || service.lock().figures())?;
    }
    let port = service.lock().port();
    serve_until_stopped(S::NAME, port)?;
    service.lock().close();
    Ok(ExitCode::SUCCESS)
}

/// Blocks until SIGTERM or SIGINT arrives; the services run on their own threads.
fn serve_until_stopped(what: &str, port: u16) -> sixcast::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|err| sixcast::Error::io("installing signal handlers", err))?;
    // Scripts and tests wait for this line before they rely on the service.
    eprintln!("sixcast: {what} running on UDP port {port}; Ctrl-C to stop");
    if let Some(signal) = signals.forever().next() {
        eprintln!("sixcast: {what} stopping (signal {signal})");
    }
    Ok(())
}
