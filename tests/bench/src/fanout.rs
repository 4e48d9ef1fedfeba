//! The sender's own cost against receiver count (issue 6: "sender CPU per million messages at 16
//! receivers is at most 1.2x that at 1 receiver").
//!
//! On one machine a switch's work is software: when h1 sends, its veth hands the frame to the
//! backlog of the CPU it runs on, and the bridge's copy to every member port and each receiver's
//! IP and UDP (or TCP) input then run as softirq work there, charged to the sender process. A real
//! switch does that copying in hardware and each receiver's host does its own input. So this part
//! measures twice, at one fixed rate per size that every system keeps up to 16 receivers (the
//! unpaced throughput table runs each sender as fast as it goes, which at 16 receivers is a far
//! lower rate, with a different per-message cost):
//! - as the throughput table does (the fan-out lands on the sender's CPU), and
//! - steered like a switch: receive packet steering (RPS) on h1's bridge port sends everything
//!   h1 transmits to another CPU's backlog, so the bridge and the receivers' input run there, and
//!   the sender is pinned to a CPU of its own. Its CPU time is then what it does itself.

use std::process::Command;

use serde_json::{Value, json};
use sixcast_netlab::World;

use crate::suite::{Cell, Launcher, MTU, measure, receiver_hosts, snoop, spec};

/// Receiver counts compared.
const RECEIVERS: [usize; 2] = [1, 16];
/// Messages a second by size: well under what raw multicast (one datagram per message, the
/// slowest to 16 receivers here at about 10,000/s) and ZeroMQ (about 3,000/s of 8 KiB) deliver to
/// 16 receivers, so that every system keeps the same pace at 1 and at 16.
pub(crate) const RATES: [(usize, u64); 3] = [(64, 4000), (1024, 4000), (8192, 1500)];
/// Cells last at least this long: a paced sender uses little CPU, which must be well above the
/// noise of other processes to compare.
const MIN_SECONDS: f64 = 2.0;
/// Rounds of the steered comparison, 1 and 16 receivers each: the check takes the median ratio.
const ROUNDS: usize = 5;
/// The systems compared: sixcast packing, raw UDP multicast, ZeroMQ PUB/SUB over TCP.
const SYSTEMS: [&str; 3] = ["sixcast", "raw", "zmq"];

/// One measurement of the part.
pub(crate) struct FanoutCell {
    /// Whether the fan-out ran on the other CPU (and the sender was pinned).
    pub(crate) steered: bool,
    /// Which round of the comparison (always 0 unsteered).
    pub(crate) round: usize,
    pub(crate) rate: u64,
    pub(crate) cell: Cell,
}

/// The CPUs to keep the sender on and to steer the fan-out to: the first two this process may
/// use.
fn two_cpus() -> Result<(usize, usize), String> {
    // SAFETY: cpu_set_t is plain data, filled in by the call.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable cpu_set_t and its size is passed.
    let got = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) };
    if got != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: every index is within the set.
    let mut allowed =
        (0..8 * size_of::<libc::cpu_set_t>()).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) });
    match (allowed.next(), allowed.next()) {
        (Some(sender), Some(fanout)) => Ok((sender, fanout)),
        _ => Err("the fan-out part needs two CPUs".into()),
    }
}

/// A CPU mask as sysfs reads it: hex words of 32 CPUs, most significant first, comma-separated.
fn cpu_mask(cpu: usize) -> String {
    (0..=cpu / 32)
        .rev()
        .map(|word| {
            if word == cpu / 32 {
                format!("{:08x}", 1u32 << (cpu % 32))
            } else {
                "00000000".to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Sets the RPS mask of every receive queue of `port` (a device of the switch namespace) to
/// `mask` and reads it back. `ip netns exec` mounts the namespace's own /sys.
fn set_rps(world: &World, port: &str, mask: &str) -> Result<(), String> {
    let script = format!(
        "for queue in /sys/class/net/{port}/queues/rx-*; do echo {mask} > $queue/rps_cpus; done; \
         cat /sys/class/net/{port}/queues/rx-*/rps_cpus"
    );
    let output = Command::new("ip")
        .args(["netns", "exec", world.switch_netns(), "sh", "-c", &script])
        .output()
        .map_err(|err| format!("ip netns exec: {err}"))?;
    let read_back = String::from_utf8_lossy(&output.stdout);
    // The kernel prints the mask without leading zero words or digits.
    let value = |mask: &str| u128::from_str_radix(&mask.trim().replace(',', ""), 16).ok();
    if !output.status.success()
        || read_back.lines().count() == 0
        || read_back.lines().any(|line| value(line) != value(mask))
    {
        return Err(format!(
            "setting RPS of {port} to {mask} failed: {read_back:?} {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Measures every system at 1 and 16 receivers at the size's fixed rate, once unsteered, then
/// steered in `ROUNDS` rounds, in a LAN world of its own (its bridge port's RPS mask vanishes
/// with it).
pub(crate) fn run(
    launcher: &Launcher,
    seconds: f64,
    sizes: &[usize],
) -> Result<(Value, Vec<FanoutCell>), String> {
    let (sender_cpu, fanout_cpu) = two_cpus()?;
    let seconds = seconds.max(MIN_SECONDS);
    let world = World::lan(1 + RECEIVERS[RECEIVERS.len() - 1])
        .map_err(|err| format!("building the LAN world: {err}"))?;
    world.set_mtu(MTU).map_err(|err| err.to_string())?;
    snoop(&world)?;
    // The switch-side end of h1's cable: netlab names a host's bridge port p-<host>.
    let port = "p-h1";
    println!(
        "the sender's own cost: each sender at a fixed rate to 1 and 16 receivers. \"unsteered\": \
         the bridge's fan-out and the receivers' input run on the sender's CPU, charged to it; \
         \"steered\": RPS on h1's bridge port ({port}) moves them to CPU {fanout_cpu}, where the \
         receivers are pinned too, and the sender is pinned to CPU {sender_cpu}, as a switch and \
         the receivers' own hosts would take that work off the sender ({ROUNDS} rounds)"
    );
    println!(
        "{:<10} {:>5} {:>6} {:>4} {:<8} {:>6} {:>12} {:>7} {:>11} {:>11}",
        "fan-out",
        "round",
        "size",
        "rcv",
        "system",
        "rate",
        "msg/s/rcv",
        "loss %",
        "send CPU/M",
        "recv CPU/M"
    );
    let mut cells = Vec::new();
    let mut steering_error = None;
    for steered in [false, true] {
        if steered {
            // Writing rps_cpus needs CAP_NET_ADMIN in the initial user namespace: a rootless
            // run measures unsteered only, and says so.
            if let Err(reason) = set_rps(&world, port, &cpu_mask(fanout_cpu)) {
                println!("no steered figures: {reason}");
                steering_error = Some(reason);
                break;
            }
        }
        let rounds = if steered { ROUNDS } else { 1 };
        for &(size, rate) in RATES.iter().filter(|(size, _)| sizes.contains(size)) {
            for system in SYSTEMS {
                for round in 0..rounds {
                    // Alternating the order keeps a drift in the machine's load from favouring
                    // either count.
                    let mut counts = RECEIVERS;
                    if round % 2 == 1 {
                        counts.reverse();
                    }
                    for receivers in counts {
                        let index = cells.len();
                        let mut sender = spec(system, "send", size, seconds, index, &world);
                        sender["subscribers"] = json!(receivers);
                        sender["rate"] = json!(rate);
                        let mut receiver = spec(system, "recv", size, seconds, index, &world);
                        if steered {
                            sender["cpu"] = json!(sender_cpu);
                            receiver["cpu"] = json!(fanout_cpu);
                        }
                        let listeners: Vec<_> = receiver_hosts(receivers)
                            .map(|host| (host, receiver.clone()))
                            .collect();
                        let cell = measure(&world, launcher, ("h1", sender), &[], &listeners)?;
                        println!(
                            "{:<10} {round:>5} {:>6} {:>4} {:<8} {rate:>6} {:>12.0} {:>7.2} \
                             {:>11.3} {:>11.3}",
                            mode(steered),
                            cell.size,
                            cell.receivers,
                            cell.system,
                            cell.per_receiver,
                            cell.loss * 100.0,
                            cell.cpu_per_million,
                            cell.receiver_cpu_per_million
                        );
                        cells.push(FanoutCell {
                            steered,
                            round,
                            rate,
                            cell,
                        });
                    }
                }
            }
        }
    }
    println!(
        "sender CPU per message, 16 receivers / 1 receiver (median, and lowest-highest round)"
    );
    for steered in [false, true] {
        for &(size, _) in RATES.iter().filter(|(size, _)| sizes.contains(size)) {
            let ratios: Vec<String> = SYSTEMS
                .iter()
                .map(|system| {
                    cpu_ratio(&cells, steered, system, size).map_or_else(
                        || format!("{system} -"),
                        |ratio| {
                            if steered {
                                format!(
                                    "{system} {:.2} ({:.2}-{:.2})",
                                    ratio.median, ratio.lowest, ratio.highest
                                )
                            } else {
                                format!("{system} {:.2}", ratio.median)
                            }
                        },
                    )
                })
                .collect();
            println!("  {:<10} {size:>5} B: {}", mode(steered), ratios.join(", "));
        }
    }
    println!();
    let json_cells: Vec<Value> = cells
        .iter()
        .map(|fanout| {
            let mut cell = fanout.cell.to_json();
            cell["steered"] = json!(fanout.steered);
            cell["round"] = json!(fanout.round);
            cell["rate"] = json!(fanout.rate);
            cell
        })
        .collect();
    let mut ratios = Vec::new();
    for steered in [false, true] {
        for &(size, rate) in RATES.iter().filter(|(size, _)| sizes.contains(size)) {
            for system in SYSTEMS {
                if let Some(ratio) = cpu_ratio(&cells, steered, system, size) {
                    ratios.push(json!({
                        "steered": steered, "size": size, "rate": rate, "system": system,
                        "median": ratio.median, "lowest": ratio.lowest, "highest": ratio.highest,
                    }));
                }
            }
        }
    }
    let description = json!({
        "sender_cpu": sender_cpu,
        "fanout_cpu": fanout_cpu,
        "steered_port": port,
        "steering_error": steering_error,
        "seconds_per_cell": seconds,
        "sender_cpu_ratios_16_to_1": ratios,
        "cells": json_cells,
    });
    Ok((description, cells))
}

fn mode(steered: bool) -> &'static str {
    if steered { "steered" } else { "unsteered" }
}

/// Sender CPU per message at 16 receivers over that at 1, of each round: their median, lowest
/// and highest.
pub(crate) struct Ratio {
    pub(crate) median: f64,
    pub(crate) lowest: f64,
    pub(crate) highest: f64,
}

/// The ratio of `system` at `size`, steered or not, if it was measured.
pub(crate) fn cpu_ratio(
    cells: &[FanoutCell],
    steered: bool,
    system: &str,
    size: usize,
) -> Option<Ratio> {
    let cpu = |round, receivers| {
        cells
            .iter()
            .find(|fanout| {
                fanout.steered == steered
                    && fanout.round == round
                    && fanout.cell.system == system
                    && fanout.cell.size == size
                    && fanout.cell.receivers == receivers
            })
            .map(|fanout| fanout.cell.cpu_per_million)
    };
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map_while(|round| Some(cpu(round, 16)? / cpu(round, 1)?.max(f64::MIN_POSITIVE)))
        .collect();
    ratios.sort_by(f64::total_cmp);
    Some(Ratio {
        median: *ratios.get(ratios.len() / 2)?,
        lowest: *ratios.first()?,
        highest: *ratios.last()?,
    })
}
