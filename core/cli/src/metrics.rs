//! `--metrics ADDR:PORT`: the figures of a running command in the OpenMetrics text format that
//! Prometheus scrapes, at `GET /metrics`. The figures are read from the library's stats at each
//! scrape, so they cost nothing in between.

use std::{net::SocketAddr, sync::Arc};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use sixcast::{
    Channel, Context, CorePath, ErrorKind, Stats, relay::RelayStats, stratum0::Stratum0Stats,
};

/// What a figure counts: events since the start (a counter, exported with `_total`), or a
/// level now (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// One value of one metric, with at most one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Figure {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    label: Option<(&'static str, &'static str)>,
    value: u64,
}

fn counter(name: &'static str, help: &'static str, value: u64) -> Figure {
    Figure {
        name,
        help,
        kind: Kind::Counter,
        label: None,
        value,
    }
}

/// Reads the figures at each scrape.
type Source = Box<dyn Fn() -> Vec<Figure> + Send + Sync>;

struct Figures(Source);

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Figures")
    }
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = (self.0)();
        // Figures of one name are consecutive and share one descriptor.
        for family in figures.chunk_by(|a, b| a.name == b.name) {
            let first = &family[0];
            let metric_type = match first.kind {
                Kind::Counter => ConstCounter::new(0u64).metric_type(),
                Kind::Gauge => ConstGauge::new(0i64).metric_type(),
            };
            let mut metric =
                encoder.encode_descriptor(first.name, first.help, None, metric_type)?;
            match (family, first.label) {
                ([only], None) => encode_value(only, metric)?,
                // A labelled family: every figure has a label.
                _ => {
                    for figure in family {
                        if let Some(label) = figure.label {
                            encode_value(figure, metric.encode_family(&[label])?)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_value(figure: &Figure, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
    match figure.kind {
        Kind::Counter => ConstCounter::new(figure.value).encode(encoder),
        Kind::Gauge => {
            ConstGauge::new(i64::try_from(figure.value).unwrap_or(i64::MAX)).encode(encoder)
        }
    }
}

/// The OpenMetrics text of `figures`.
pub(super) fn render(figures: Source) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures(figures)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// Serves `figures` at `http://ADDRESS/metrics` from a thread of its own, for as long as the
/// process runs.
pub(super) fn serve(
    address: SocketAddr,
    figures: impl Fn() -> Vec<Figure> + Send + Sync + 'static,
) -> sixcast::Result<()> {
    let server = tiny_http::Server::http(address).map_err(|err| {
        sixcast::Error::new(
            ErrorKind::Io,
            format!("cannot serve metrics on {address}: {err}"),
        )
    })?;
    let figures: Arc<dyn Fn() -> Vec<Figure> + Send + Sync> = Arc::new(figures);
    std::thread::Builder::new()
        .name("sixcast-metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url() == "/metrics" {
                    let figures = Arc::clone(&figures);
                    match render(Box::new(move || figures())) {
                        Ok(text) => tiny_http::Response::from_string(text).with_header(
                            tiny_http::Header::from_bytes(
                                "Content-Type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .unwrap_or_else(|()| unreachable!("a valid header")),
                        ),
                        Err(_) => tiny_http::Response::from_string("encoding failed\n")
                            .with_status_code(500),
                    }
                } else {
                    tiny_http::Response::from_string("metrics are at /metrics\n")
                        .with_status_code(404)
                };
                // A scraper that went away is its own business.
                let _ = request.respond(response);
            }
        })
        .map_err(|err| {
            sixcast::Error::new(
                ErrorKind::Io,
                format!("cannot start the metrics thread: {err}"),
            )
        })?;
    Ok(())
}

/// Serves `channel`'s figures and `context`'s path at `address`, if one is given.
pub(super) fn serve_channel(
    address: Option<SocketAddr>,
    context: &Context,
    channel: &Channel,
) -> sixcast::Result<()> {
    let Some(address) = address else {
        return Ok(());
    };
    let (context, channel) = (context.clone(), channel.clone());
    serve(address, move || {
        let mut figures = channel_figures(&channel.stats());
        figures.extend(path_figures(context.path()));
        figures
    })
}

/// The names of [`CorePath`]s, each a label value of `sixcast_path`.
const PATHS: [&str; 5] = ["native", "relay", "repeater", "gateway", "unreachable"];

/// The path to the core as an enumeration of gauges: 1 for the path now, 0 for the others
/// (all 0 while it is not known yet).
fn path_figures(path: Option<CorePath>) -> impl Iterator<Item = Figure> {
    PATHS.into_iter().map(move |name| Figure {
        name: "sixcast_path",
        help: "How this node reaches the multicast core now (1), by path.",
        kind: Kind::Gauge,
        label: Some(("path", name)),
        value: u64::from(path.is_some_and(|path| path.name() == name)),
    })
}

/// The figures of configuration reloads (SIGHUP), by outcome.
pub(super) fn reload_figures(applied: u64, failed: u64) -> [Figure; 2] {
    [("applied", applied), ("failed", failed)].map(|(outcome, value)| Figure {
        name: "sixcast_config_reloads",
        help: "Configuration reloads on SIGHUP, by outcome.",
        kind: Kind::Counter,
        label: Some(("outcome", outcome)),
        value,
    })
}

/// A channel's figures, from its [`Stats`].
pub(super) fn channel_figures(stats: &Stats) -> Vec<Figure> {
    let mut figures = vec![
        counter(
            "sixcast_messages_received",
            "Messages delivered to the application.",
            stats.messages_received,
        ),
        counter(
            "sixcast_bytes_received",
            "Payload bytes delivered to the application.",
            stats.bytes_received,
        ),
        counter(
            "sixcast_datagrams_received",
            "Datagrams received for the channel.",
            stats.datagrams_received,
        ),
        counter(
            "sixcast_messages_sent",
            "Messages sent.",
            stats.messages_sent,
        ),
        counter(
            "sixcast_datagrams_sent",
            "Datagrams sent.",
            stats.datagrams_sent,
        ),
        counter(
            "sixcast_duplicates",
            "Duplicate datagrams dropped.",
            stats.duplicates,
        ),
        counter(
            "sixcast_malformed",
            "Malformed datagrams dropped.",
            stats.malformed,
        ),
        counter(
            "sixcast_queue_overflow",
            "Messages dropped because the receive queue was full.",
            stats.queue_overflow,
        ),
        Figure {
            name: "sixcast_lost",
            help: "Messages never heard: gaps in senders' sequence numbers, less late arrivals.",
            kind: Kind::Gauge,
            label: None,
            value: stats.lost,
        },
        counter(
            "sixcast_reassembly_dropped",
            "Fragmented messages given up on.",
            stats.reassembly_dropped,
        ),
        counter(
            "sixcast_nacks_sent",
            "NACKs sent for reliable senders' packets missed.",
            stats.nacks_sent,
        ),
        counter(
            "sixcast_nacks_received",
            "NACKs received for this node's own reliable packets.",
            stats.nacks_received,
        ),
        counter(
            "sixcast_repairs_sent",
            "Repair datagrams sent: parity, re-sent packets, announcements of a burst's end.",
            stats.repairs_sent,
        ),
        counter(
            "sixcast_repair_bytes_sent",
            "Bytes of the repair datagrams sent.",
            stats.repair_bytes_sent,
        ),
        counter(
            "sixcast_repairs_received",
            "Parity datagrams received for packets still needed.",
            stats.repairs_received,
        ),
        counter(
            "sixcast_packets_recovered",
            "Reliable senders' packets rebuilt from parity.",
            stats.packets_recovered,
        ),
        counter(
            "sixcast_packets_lost",
            "Reliable senders' packets given up.",
            stats.packets_lost,
        ),
    ];
    figures.extend(
        sixcast::crypto::DropReason::ALL
            .iter()
            .map(|reason| Figure {
                name: "sixcast_protection_drops",
                help: "Datagrams refused by the channel's keys, by reason.",
                kind: Kind::Counter,
                label: Some(("reason", reason.name())),
                value: stats.drops.get(*reason),
            }),
    );
    figures
}

/// A relay's figures, from its [`RelayStats`].
pub(super) fn relay_figures(stats: &RelayStats) -> Vec<Figure> {
    let throttled = |label, value| Figure {
        name: "sixcast_relay_throttled",
        help: "Datagrams of verified clients dropped for exceeding their rate, by kind.",
        kind: Kind::Counter,
        label: Some(("kind", label)),
        value,
    };
    vec![
        Figure {
            name: "sixcast_relay_tunnels",
            help: "Tunnel clients now served.",
            kind: Kind::Gauge,
            label: None,
            value: stats.tunnels,
        },
        counter(
            "sixcast_relay_offers",
            "Offers sent to Stratum 0's solicitations.",
            stats.offers,
        ),
        counter(
            "sixcast_relay_challenges",
            "Challenges sent to HELLOs.",
            stats.challenges,
        ),
        counter(
            "sixcast_relay_refused",
            "JOINs refused (bad MAC or no room).",
            stats.refused,
        ),
        counter(
            "sixcast_relay_datagrams_down",
            "Datagrams forwarded down tunnels.",
            stats.datagrams_down,
        ),
        counter(
            "sixcast_relay_datagrams_up",
            "Datagrams received up tunnels.",
            stats.datagrams_up,
        ),
        counter(
            "sixcast_relay_bytes_down",
            "Payload bytes forwarded down tunnels.",
            stats.bytes_down,
        ),
        counter(
            "sixcast_relay_bytes_up",
            "Payload bytes received up tunnels.",
            stats.bytes_up,
        ),
        counter(
            "sixcast_relay_rejected",
            "Datagrams dropped: malformed, unknown client or group.",
            stats.rejected,
        ),
        counter(
            "sixcast_relay_rebinds",
            "Tunnels moved after a NAT rebinding.",
            stats.rebinds,
        ),
        throttled("data", stats.throttled),
        throttled("control", stats.throttled_control),
    ]
}

/// Stratum 0's figures, from its [`Stratum0Stats`].
pub(super) fn stratum0_figures(stats: &Stratum0Stats) -> Vec<Figure> {
    vec![
        counter("sixcast_stratum0_probes", "Probes answered.", stats.probes),
        counter("sixcast_stratum0_beacons", "Beacons heard.", stats.beacons),
        counter(
            "sixcast_stratum0_cookies",
            "Cookies sent to unverified nodes.",
            stats.cookies,
        ),
        counter(
            "sixcast_stratum0_solicitations",
            "Relay solicitations multicast.",
            stats.solicitations,
        ),
        counter(
            "sixcast_stratum0_rejected",
            "Control messages refused.",
            stats.rejected,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_a_label_and_only_the_current_one_is_set() {
        let relay = CorePath::Relay("[2001:db8::1]:6448".parse().unwrap());
        let paths = [
            CorePath::Native,
            relay,
            CorePath::Repeater("[2001:db8::1]:6448".parse().unwrap()),
            CorePath::Gateway("[2001:db8::1]:6448".parse().unwrap()),
            CorePath::Unreachable,
        ];
        for path in paths {
            let set: Vec<_> = path_figures(Some(path))
                .filter(|figure| figure.value == 1)
                .map(|figure| figure.label)
                .collect();
            assert_eq!(set, [Some(("path", path.name()))]);
        }
        assert!(path_figures(None).all(|figure| figure.value == 0));
    }

    #[test]
    fn figures_render_as_openmetrics_text() {
        let text = render(Box::new(|| {
            let mut figures = relay_figures(&RelayStats::default());
            figures.push(counter("sixcast_test_events", "Events.", 7));
            figures.extend(reload_figures(2, 1));
            figures
        }))
        .unwrap();
        for line in [
            "# TYPE sixcast_relay_tunnels gauge",
            "sixcast_relay_tunnels 0",
            "# TYPE sixcast_relay_datagrams_down counter",
            "sixcast_relay_datagrams_down_total 0",
            "sixcast_relay_throttled_total{kind=\"control\"} 0",
            "sixcast_test_events_total 7",
            "sixcast_config_reloads_total{outcome=\"failed\"} 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|got| got == line),
                "no {line:?} in\n{text}"
            );
        }
    }
}
