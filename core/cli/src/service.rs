//! `sixcast stratum0` and `sixcast relay`: the core's services, configured by flags and the
//! configuration file's `[stratum0]` and `[relay]` tables (see [`settings`]), serving metrics on
//! request, reloading their configuration on SIGHUP, and stopping cleanly on SIGTERM or Ctrl-C.

use std::{
    net::{SocketAddr, SocketAddrV6},
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use clap::Args;
use parking_lot::Mutex;
use sixcast::{
    relay::{Relay, RelayConfig},
    stratum0::{Stratum0, Stratum0Config},
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
    let (config, metrics) = stratum0_config(listen, core)?;
    let running = (config.clone(), metrics);
    // Every setting of Stratum 0 is a socket's: a reload checks the file and names what changed.
    let reload = |_: &Stratum0| {
        let (config, metrics) = stratum0_config(listen, core)?;
        Ok(changed([
            ("listen", running.0.listen != config.listen),
            ("interfaces", running.0.interfaces != config.interfaces),
            ("scope", running.0.scope != config.scope),
            ("hops", running.0.hop_limit != config.hop_limit),
            ("metrics", running.1 != metrics),
        ]))
    };
    serve(Stratum0::spawn(config)?, metrics, reload)
}

/// Stratum 0's settings from the flags and the configuration file, and where to serve metrics.
fn stratum0_config(
    listen: Option<SocketAddrV6>,
    core: &CoreSide,
) -> sixcast::Result<(Stratum0Config, Option<SocketAddr>)> {
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
    Ok((config, core.metrics.or(file.metrics)))
}

pub(super) fn run_relay(options: &RelayOptions, core: &CoreSide) -> sixcast::Result<ExitCode> {
    let (config, metrics) = relay_config(options, core)?;
    // Limits and keys apply at once; the relay names the settings that need a restart.
    let reload = |relay: &Relay| {
        let (config, new_metrics) = relay_config(options, core)?;
        let mut restart = relay.reload(&config)?;
        // Named as the configuration file names it.
        for name in &mut restart {
            if *name == "hop_limit" {
                *name = "hops";
            }
        }
        if new_metrics != metrics {
            restart.push("metrics");
        }
        Ok(restart)
    };
    serve(Relay::spawn(config)?, metrics, reload)
}

/// The names of the settings that changed.
fn changed<const N: usize>(settings: [(&'static str, bool); N]) -> Vec<&'static str> {
    settings
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

/// The relay's settings from the flags and the configuration file, and where to serve metrics.
fn relay_config(
    options: &RelayOptions,
    core: &CoreSide,
) -> sixcast::Result<(RelayConfig, Option<SocketAddr>)> {
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
    Ok((config, core.metrics.or(file.metrics)))
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

/// How many configuration reloads were applied and how many failed.
#[derive(Default)]
struct Reloads {
    applied: AtomicU64,
    failed: AtomicU64,
}

/// Serves `service` (and its metrics at `metrics_address`) until SIGTERM or SIGINT, then stops
/// it. On SIGHUP it calls `reload`, which re-reads the configuration, applies what it can and
/// names the settings that need a restart; a configuration that fails leaves the service as
/// it was.
fn serve<S: Service>(
    service: S,
    metrics_address: Option<SocketAddr>,
    mut reload: impl FnMut(&S) -> sixcast::Result<Vec<&'static str>>,
) -> sixcast::Result<ExitCode> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let service = Arc::new(Mutex::new(service));
    let reloads = Arc::new(Reloads::default());
    if let Some(address) = metrics_address {
        let (service, reloads) = (Arc::clone(&service), Arc::clone(&reloads));
        metrics::serve(address, move || {
            let mut figures = service.lock().figures();
            let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            figures.extend(metrics::reload_figures(
                count(&reloads.applied),
                count(&reloads.failed),
            ));
            figures
        })?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|err| sixcast::Error::io("installing signal handlers", err))?;
    let what = S::NAME;
    // Scripts and tests wait for this line before they rely on the service.
    eprintln!(
        "sixcast: {what} running on UDP port {}; Ctrl-C to stop, SIGHUP to reload",
        service.lock().port()
    );
    for signal in signals.forever() {
        if signal != SIGHUP {
            eprintln!("sixcast: {what} stopping (signal {signal})");
            break;
        }
        match reload(&service.lock()) {
            Ok(restart) => {
                reloads.applied.fetch_add(1, Ordering::Relaxed);
                if restart.is_empty() {
                    eprintln!("sixcast: {what} reloaded its configuration");
                } else {
                    eprintln!(
                        "sixcast: {what} reloaded its configuration; a restart is needed for: {}",
                        restart.join(", ")
                    );
                }
            }
            Err(err) => {
                reloads.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("sixcast: {what} kept its configuration: {err}");
            }
        }
    }
    service.lock().close();
    Ok(ExitCode::SUCCESS)
}
