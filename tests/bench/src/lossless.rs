//! The lossless comparison (issue 13): reliable sixcast beside ZeroMQ PUB/SUB, each delivering
//! everything it accepts, at the common MTU of 1500 and at 9000, to 1, 2, 4 and 16 receivers.
//! ZeroMQ is lossless by TCP's flow control; reliable sixcast by its repair and its sender
//! keeping pace with the slowest receiver. A cell counts only if nothing was lost.

use serde_json::{Value, json};
use sixcast_netlab::World;

use crate::suite::{Cell, Launcher, measure, receiver_hosts, spec};

/// The MTUs compared: the common LAN's, and jumbo frames.
pub(crate) const MTUS: [u32; 2] = [1500, 9000];
/// Receiver counts of the comparison.
pub(crate) const RECEIVERS: [usize; 4] = [1, 2, 4, 16];
/// Message sizes of the comparison.
pub(crate) const SIZES: [usize; 2] = [64, 1024];
/// The systems: reliable sixcast and its lossless peer.
const SYSTEMS: [&str; 2] = ["sixcast-reliable", "zmq"];

/// One measured cell and the MTU it ran at.
pub(crate) struct LosslessCell {
    pub(crate) mtu: u32,
    pub(crate) cell: Cell,
}

/// Runs every cell in a LAN of 17 hosts; returns the cells and their JSON.
pub(crate) fn run(
    launcher: &Launcher,
    seconds: f64,
    sizes: &[usize],
    receiver_counts: &[usize],
) -> Result<(Vec<LosslessCell>, Value), String> {
    let mut cells = Vec::new();
    for mtu in MTUS {
        println!(
            "lossless delivery at MTU {mtu}: messages per second per receiver, sender h1; \
             sixcast-reliable repairs and keeps pace with its slowest receiver, zmq is PUB/SUB \
             over TCP"
        );
        println!(
            "{:<18} {:>6} {:>4} {:>14} {:>8}",
            "system", "size", "rcv", "msg/s/rcv", "lost"
        );
        for &receivers in receiver_counts {
            // A LAN of the sender and exactly its receivers, so that no host gets traffic it
            // did not join without the bridge snooping MLD: with snooping, 16 reliable
            // receivers in this harness saw some of them cut off in the last tenth of a second
            // of a cell, which a plain bridge never did (not understood yet).
            let world = World::lan(1 + receivers)
                .map_err(|err| format!("building the LAN world: {err}"))?;
            world.set_mtu(mtu).map_err(|err| err.to_string())?;
            for &size in sizes {
                for system in SYSTEMS {
                    let index = cells.len() + 100;
                    let mut sender = spec(system, "send", size, seconds, index, &world);
                    sender["subscribers"] = json!(receivers);
                    // The largest UDP payload of an IPv6 packet of this MTU.
                    sender["datagram"] = json!(mtu as usize - 48);
                    let listeners: Vec<_> = receiver_hosts(receivers)
                        .map(|host| {
                            let mut listener = spec(system, "recv", size, seconds, index, &world);
                            listener["datagram"] = json!(mtu as usize - 48);
                            (host, listener)
                        })
                        .collect();
                    let cell = measure(&world, launcher, ("h1", sender), &[], &listeners)?;
                    println!(
                        "{:<18} {:>6} {:>4} {:>14.0} {:>8.5}",
                        cell.system, cell.size, cell.receivers, cell.per_receiver, cell.loss
                    );
                    cells.push(LosslessCell { mtu, cell });
                }
            }
        }
        println!();
    }
    let json = cells
        .iter()
        .map(|lossless| {
            let mut cell = lossless.cell.to_json();
            cell["mtu"] = json!(lossless.mtu);
            cell
        })
        .collect();
    Ok((cells, json))
}

/// The targets: reliable sixcast at least 1.5x ZeroMQ per receiver at 4 and 16 receivers and
/// at least 1.0x at 1 and 2, at both MTUs, with nothing lost (a cell that lost anything has no
/// ratio).
pub(crate) fn targets(cells: &[LosslessCell]) -> Vec<(String, Option<f64>, f64)> {
    let rate = |system: &str, mtu, size, receivers| {
        cells
            .iter()
            .find(|lossless| {
                lossless.mtu == mtu
                    && lossless.cell.system == system
                    && lossless.cell.size == size
                    && lossless.cell.receivers == receivers
            })
            .filter(|lossless| lossless.cell.loss <= 0.0)
            .map(|lossless| lossless.cell.per_receiver)
    };
    let mut targets = Vec::new();
    for mtu in MTUS {
        for size in SIZES {
            for receivers in RECEIVERS {
                let ratio = rate("sixcast-reliable", mtu, size, receivers)
                    .zip(rate("zmq", mtu, size, receivers))
                    .map(|(ours, theirs)| ours / theirs.max(f64::MIN_POSITIVE));
                let limit = if receivers >= 4 { 1.5 } else { 1.0 };
                targets.push((
                    format!(
                        "MTU {mtu}, {size} B, {receivers} rcv: lossless sixcast-reliable/zmq msg/s per receiver"
                    ),
                    ratio,
                    limit,
                ));
            }
        }
    }
    targets
}
