//! Events: a context reports its path to the core as it settles, and the messages of a sender
//! it never heard, instead of leaving the application to poll and compare.

mod harness;

use std::{
    net::{SocketAddrV6, UdpSocket},
    time::Duration,
};

use harness::{World, config, relay_on, stratum0_on, world};
use sixcast::{Context, CorePath, ErrorKind, Event, NodeId, wire};

const WAIT: Duration = Duration::from_secs(15);

/// The first path the context announces.
fn first_path(context: &Context) -> CorePath {
    loop {
        match context.event_timeout(WAIT).unwrap() {
            Event::PathChanged { path } => return path,
            _ => continue,
        }
    }
}

#[test]
fn the_path_to_the_core_arrives_as_an_event() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let relay = relay_on(&world, "r1");
    let relay_address = SocketAddrV6::new(world.host("r1").addr(), relay.port(), 0, 0);
    let on = |host: &str| {
        world.host(host).spawn(move || {
            let mut island = config();
            island.stratum0 = Some(s0);
            let context = Context::new(island).unwrap();
            context.channel("events").unwrap().join().unwrap();
            first_path(&context)
        })
    };
    let (island, core) = (on("i1"), on("c1"));
    assert_eq!(island.join().unwrap(), CorePath::Relay(relay_address));
    assert_eq!(core.join().unwrap(), CorePath::Native);
}

#[test]
fn skipped_messages_of_a_sender_arrive_as_an_event() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("gappy").unwrap();
            channel.join().unwrap();
            assert_eq!(context.try_event().unwrap(), None);
            // A sender of its own making, on the same host: messages 0, 1 and 4, not 2 and 3.
            let socket =
                socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
            let index = context
                .interfaces()
                .first()
                .map_or(0, |name| interface_index(name));
            socket.set_multicast_if_v6(index).unwrap();
            socket.set_multicast_loop_v6(true).unwrap();
            let socket: UdpSocket = socket.into();
            let to = SocketAddrV6::new(channel.group(), context.port(), 0, 0);
            let sender = NodeId(0x42);
            for seq in [0, 1, 4] {
                for datagram in wire::pack(sender, seq, 1232, &[b"numbered".as_slice()]).unwrap() {
                    socket.send_to(&datagram, to).unwrap();
                }
            }
            let mut received = 0;
            while received < 3 {
                channel.recv_timeout(WAIT).unwrap();
                received += 1;
            }
            let event = context.event_timeout(WAIT).unwrap();
            assert_eq!(
                event,
                Event::MessagesLost {
                    group: channel.group(),
                    sender,
                    count: 2
                }
            );
            assert_eq!(event.name(), "messages_lost");
            assert_eq!(channel.stats().lost, 2);
            let losses = channel.sender_losses();
            assert_eq!(losses.len(), 1, "{losses:?}");
            assert_eq!(
                (losses[0].sender, losses[0].highest_seq, losses[0].lost),
                (sender, Some(4), 2)
            );
            context.close();
            assert_eq!(context.try_event().unwrap_err().kind(), ErrorKind::Closed);
        })
        .join()
        .unwrap();
}

/// The index of the interface called `name`.
fn interface_index(name: &str) -> u32 {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name; if_nametoindex reads it and returns 0 if unknown.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}
