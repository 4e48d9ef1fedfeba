//! What protection costs (issue 17): reliable sixcast plain, sealed (AES-256-GCM under a key
//! per sender), and sealed and signed (Ed25519 over runs of datagrams), side by side in one
//! run with ZeroMQ PUB/SUB plain and over CURVE (its encrypted, authenticated transport), at
//! MTU 1500 and 9000, 64 B and 1 KiB, to 1 and 4 receivers. Each cell is lossless or has no
//! ratio, so that a cheaper cell cannot win by dropping what it could not open.

use serde_json::{Value, json};
use sixcast_netlab::World;

use crate::{
    lossless::{MTUS, Target},
    suite::{Cell, Launcher, measure, receiver_hosts, spec},
};

const SIZES: [usize; 2] = [64, 1024];
/// Rounds of each (MTU, size, receivers) triple, its systems one after the other in each: a
/// ratio is the median of its rounds', so that one round slowed by the shared machine does not
/// decide a target.
const ROUNDS: usize = 3;
const RECEIVERS: [usize; 2] = [1, 4];
/// Plain sixcast first: the other two sixcast rows are measured against it, sealed sixcast
/// against ZeroMQ over CURVE, and CURVE against plain ZeroMQ.
const SYSTEMS: [&str; 5] = [
    "sixcast-reliable",
    "sixcast-reliable-sealed",
    "sixcast-reliable-signed",
    "zmq",
    "zmq-curve",
];

/// Runs every cell [`ROUNDS`] times; returns the JSON and the targets, each the median of its
/// rounds: sealed at least 0.8x plain in messages per second per receiver and at most 1.25x its
/// CPU per message at the sender and at the receivers, sealed and signed at least 0.5x plain.
pub(crate) fn run(launcher: &Launcher, seconds: f64) -> Result<(Value, Vec<Target>), String> {
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for mtu in MTUS {
        println!(
            "protection at MTU {mtu}, lossless: messages per second per receiver, and CPU \
             seconds per million messages at the sender and over all receivers"
        );
        println!(
            "{:<24} {:>5} {:>4} {:>5} {:>12} {:>8} {:>9} {:>9}",
            "system", "size", "rcv", "round", "msg/s/rcv", "lost", "send cpu", "recv cpu"
        );
        for receivers in RECEIVERS {
            let world = World::lan(1 + receivers)
                .map_err(|err| format!("building the LAN world: {err}"))?;
            world.set_mtu(mtu).map_err(|err| err.to_string())?;
            for size in SIZES {
                let mut rounds = Vec::with_capacity(ROUNDS);
                for round in 1..=ROUNDS {
                    let cells = SYSTEMS
                        .iter()
                        .map(|system| {
                            let cell = measure_cell(
                                launcher,
                                &world,
                                (mtu, size, receivers),
                                system,
                                seconds,
                                400 + rows.len(),
                            )?;
                            println!(
                                "{:<24} {:>5} {:>4} {:>5} {:>12.0} {:>8.5} {:>9.2} {:>9.2}",
                                system,
                                size,
                                receivers,
                                round,
                                cell.per_receiver,
                                cell.loss,
                                cell.cpu_per_million,
                                cell.receiver_cpu_per_million
                            );
                            rows.push(json!({"mtu": mtu, "round": round, "cell": cell.to_json()}));
                            Ok(cell)
                        })
                        .collect::<Result<Vec<Cell>, String>>()?;
                    rounds.push(cell_targets(&cells, (mtu, size, receivers)));
                }
                targets.extend(median_targets(rounds));
            }
        }
        println!();
    }
    Ok((json!(rows), targets))
}

/// One cell of `system`: `seconds` of `size`-byte messages from h1 to `receivers` hosts.
fn measure_cell(
    launcher: &Launcher,
    world: &World,
    (mtu, size, receivers): (u32, usize, usize),
    system: &str,
    seconds: f64,
    index: usize,
) -> Result<Cell, String> {
    // The largest UDP payload of an IPv6 packet of this MTU.
    let datagram = mtu as usize - 48;
    let mut sender = spec(system, "send", size, seconds, index, world);
    sender["datagram"] = json!(datagram);
    // A ZeroMQ publisher starts once every subscriber has subscribed.
    sender["subscribers"] = json!(receivers);
    // A fresh CURVE key pair for the publisher of each cell; subscribers make their own.
    let curve = if system == "zmq-curve" {
        let pair = zmq::CurveKeyPair::new().map_err(|err| format!("CURVE keys: {err}"))?;
        let z85 = |key: &[u8]| zmq::z85_encode(key).map_err(|err| format!("Z85: {err:?}"));
        sender["curve_secret"] = json!(z85(&pair.secret_key)?);
        Some(z85(&pair.public_key)?)
    } else {
        None
    };
    let listeners: Vec<_> = receiver_hosts(receivers)
        .map(|host| {
            let mut listener = spec(system, "recv", size, seconds, index, world);
            listener["datagram"] = json!(datagram);
            if let Some(public) = &curve {
                listener["curve_server"] = json!(public);
            }
            (host, listener)
        })
        .collect();
    measure(world, launcher, ("h1", sender), &[], &listeners)
}

/// Each target of the rounds (the same targets, in the same order, in every round) with the
/// median of the values its rounds measured (`None` where none did: not lossless).
fn median_targets(rounds: Vec<Vec<Target>>) -> Vec<Target> {
    let mut rounds = rounds.into_iter();
    let Some(first) = rounds.next() else {
        return Vec::new();
    };
    let rest: Vec<Vec<Target>> = rounds.collect();
    first
        .into_iter()
        .enumerate()
        .map(|(index, (name, value, limit, at_least))| {
            let mut values: Vec<f64> = std::iter::once(value)
                .chain(rest.iter().map(|round| round.get(index).and_then(|t| t.1)))
                .flatten()
                .collect();
            values.sort_by(f64::total_cmp);
            (name, median(&values), limit, at_least)
        })
        .collect()
}

/// The median of sorted `values` (the mean of the middle two of an even count).
fn median(values: &[f64]) -> Option<f64> {
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2.0),
    }
}

/// The ratios of one (MTU, size, receivers) triple's cells: sixcast's protected rows against
/// its plain one, and sealed sixcast against ZeroMQ over CURVE (at least as fast, lossless).
fn cell_targets(cells: &[Cell], (mtu, size, receivers): (u32, usize, usize)) -> Vec<Target> {
    let [plain, sealed, signed, _, curve] = cells else {
        return Vec::new();
    };
    let lossless = |cell: &Cell| cell.loss <= 0.0;
    let ratio = |ours: f64, theirs: f64| {
        (lossless(plain) && lossless(sealed) && lossless(signed))
            .then(|| ours / theirs.max(f64::MIN_POSITIVE))
    };
    let against_curve = (lossless(sealed) && lossless(curve))
        .then(|| sealed.per_receiver / curve.per_receiver.max(f64::MIN_POSITIVE));
    let name = |what: &str| format!("MTU {mtu}, {size} B, {receivers} rcv: {what}");
    vec![
        (
            name("sealed/plain msg/s per receiver"),
            ratio(sealed.per_receiver, plain.per_receiver),
            0.8,
            true,
        ),
        (
            name("sealed/plain sender CPU per message"),
            ratio(sealed.cpu_per_million, plain.cpu_per_million),
            1.25,
            false,
        ),
        (
            name("sealed/plain receiver CPU per message"),
            ratio(
                sealed.receiver_cpu_per_million,
                plain.receiver_cpu_per_million,
            ),
            1.25,
            false,
        ),
        (
            name("sealed+signed/plain msg/s per receiver"),
            ratio(signed.per_receiver, plain.per_receiver),
            0.5,
            true,
        ),
        (
            name("sealed/ZeroMQ CURVE msg/s per receiver"),
            against_curve,
            1.0,
            true,
        ),
    ]
}
