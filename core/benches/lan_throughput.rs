//! Delivered messages per second on a bridged LAN of namespaces: sixcast (packing small
//! messages) beside raw UDP multicast sending one message per datagram with sendmmsg/recvmmsg,
//! measured in the same run for 64 B, 1 KiB and 8 KiB messages and 1, 4 and 16 receivers.
//!
//! ```sh
//! cargo bench -p sixcast --bench lan_throughput            # needs root or user namespaces
//! SIXCAST_BENCH_SECONDS=3 cargo bench -p sixcast --bench lan_throughput
//! ```
//! All traffic stays inside the namespaces this benchmark creates and removes.

use std::{
    mem,
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::AsRawFd,
    ptr,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use sixcast::{Config, Context, ErrorKind};
use sixcast_netlab::World;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const SIZES: [usize; 3] = [64, 1024, 8192];
const RECEIVERS: [usize; 3] = [1, 4, 16];
/// The bridge's MTU: jumbo frames, so an 8 KiB message fits one datagram in both systems.
const MTU: u32 = 9000;
/// Largest UDP payload in a 9000-byte IPv6 packet.
const DATAGRAM: usize = MTU as usize - 48;
const RAW_GROUP: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0xbe, 0x4c);
const RAW_PORT: u16 = 7999;
const BATCH: usize = 32;
/// How long receivers keep listening after the sender stops, for datagrams still queued.
const DRAIN: Duration = Duration::from_millis(300);

fn main() {
    if let Err(reason) = sixcast_netlab::check_environment(false) {
        eprintln!("lan_throughput: cannot build the namespace world: {reason}");
        std::process::exit(1);
    }
    let seconds = std::env::var("SIXCAST_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0);
    let duration = Duration::from_secs_f64(seconds);
    let world = World::lan(1 + RECEIVERS[RECEIVERS.len() - 1]).expect("build the LAN world");
    world.set_mtu(MTU).expect("set the MTU");
    println!("sender h1, receivers h2.., one bridge, MTU {MTU}, {seconds} s per run\n");
    println!(
        "{:>6} {:>9} | {:>12} {:>12} | {:>12} {:>12} | {:>6}",
        "size", "receivers", "sixcast/rcv", "total", "raw/rcv", "total", "ratio"
    );
    for size in SIZES {
        for receivers in RECEIVERS {
            let sixcast = run(
                &world,
                receivers,
                duration,
                size,
                sixcast_sender,
                sixcast_receiver,
            );
            let raw = run(&world, receivers, duration, size, raw_sender, raw_receiver);
            println!(
                "{:>6} {:>9} | {:>12.0} {:>12.0} | {:>12.0} {:>12.0} | {:>5.2}x",
                size,
                receivers,
                sixcast.per_receiver,
                sixcast.total,
                raw.per_receiver,
                raw.total,
                sixcast.per_receiver / raw.per_receiver.max(1.0)
            );
        }
    }
}

struct Rates {
    per_receiver: f64,
    total: f64,
}

type Sender = fn(usize, Duration, &Barrier) -> u64;
type Receiver = fn(usize, Duration, &Barrier) -> u64;

/// Runs one sender on h1 and `receivers` receivers on h2.. for `duration`.
fn run(
    world: &World,
    receivers: usize,
    duration: Duration,
    size: usize,
    sender: Sender,
    receiver: Receiver,
) -> Rates {
    let start = Arc::new(Barrier::new(receivers + 1));
    let listening: Vec<_> = (0..receivers)
        .map(|i| {
            let start = Arc::clone(&start);
            world
                .host(&format!("h{}", i + 2))
                .spawn(move || receiver(size, duration, &start))
        })
        .collect();
    let sent = world
        .host("h1")
        .spawn(move || sender(size, duration, &start))
        .join()
        .unwrap();
    let received: Vec<u64> = listening
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    let total = received.iter().sum::<u64>() as f64 / duration.as_secs_f64();
    assert!(sent > 0);
    Rates {
        per_receiver: total / receivers as f64,
        total,
    }
}

fn bench_config() -> Config {
    let mut config = Config::default();
    config.max_datagram_size = DATAGRAM;
    config.hop_limit = 1;
    config
}

fn sixcast_sender(size: usize, duration: Duration, start: &Barrier) -> u64 {
    let context = Context::new(bench_config()).unwrap();
    let channel = context.channel("bench").unwrap();
    let payload = vec![0x5c; size];
    start.wait();
    let began = Instant::now();
    let mut sent = 0;
    while began.elapsed() < duration {
        for _ in 0..256 {
            channel.send(&payload).unwrap();
        }
        sent += 256;
    }
    channel.flush().unwrap();
    sent
}

fn sixcast_receiver(_size: usize, duration: Duration, start: &Barrier) -> u64 {
    let context = Context::new(bench_config()).unwrap();
    let channel = context.channel("bench").unwrap();
    channel.join().unwrap();
    start.wait();
    let deadline = Instant::now() + duration + DRAIN;
    let mut received = 0;
    loop {
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => received += 1,
            Err(err) if err.kind() == ErrorKind::Timeout => return received,
            Err(err) => panic!("{err}"),
        }
    }
}

fn raw_socket() -> Socket {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_multicast_all_v6(false).unwrap();
    // The same 8 MiB receive buffer sixcast asks for: beyond net.core.rmem_max, which only
    // SO_RCVBUFFORCE (root in the namespace) may exceed.
    let size: libc::c_int = 8 << 20;
    // SAFETY: the option value is a live c_int and its size is passed.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            ptr::from_ref(&size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        socket.set_recv_buffer_size(8 << 20).unwrap();
    }
    socket
}

/// One message per datagram, sent 32 at a time with sendmmsg.
fn raw_sender(size: usize, duration: Duration, start: &Barrier) -> u64 {
    let socket = raw_socket();
    socket.set_multicast_hops_v6(1).unwrap();
    let interface = if_index("eth0");
    socket.set_multicast_if_v6(interface).unwrap();
    let target = SockAddr::from(SocketAddrV6::new(RAW_GROUP, RAW_PORT, 0, interface));
    let payload = vec![0x5c; size];
    start.wait();
    let began = Instant::now();
    let mut sent = 0;
    while began.elapsed() < duration {
        sent += send_many(&socket, &target, &payload);
    }
    sent
}

fn raw_receiver(_size: usize, duration: Duration, start: &Barrier) -> u64 {
    let socket = raw_socket();
    socket
        .bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            RAW_PORT,
            0,
            0,
        )))
        .unwrap();
    socket
        .join_multicast_v6(&RAW_GROUP, if_index("eth0"))
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buffers = vec![[0u8; DATAGRAM]; BATCH];
    start.wait();
    let deadline = Instant::now() + duration + DRAIN;
    let mut received = 0;
    while Instant::now() < deadline {
        received += recv_many(&socket, &mut buffers);
    }
    received
}

fn if_index(name: &str) -> u32 {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: `name` is a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

fn send_many(socket: &Socket, target: &SockAddr, payload: &[u8]) -> u64 {
    let mut iovec = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: mmsghdr is plain data; each header points at live `iovec` and `target`.
    let mut messages: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for message in &mut messages {
        message.msg_hdr.msg_name = target.as_ptr().cast_mut().cast();
        message.msg_hdr.msg_namelen = target.len();
        message.msg_hdr.msg_iov = ptr::from_mut(&mut iovec);
        message.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the headers and what they point at outlive the call.
    let sent =
        unsafe { libc::sendmmsg(socket.as_raw_fd(), messages.as_mut_ptr(), BATCH as u32, 0) };
    sent.max(0) as u64
}

fn recv_many(socket: &Socket, buffers: &mut [[u8; DATAGRAM]]) -> u64 {
    let mut iovecs: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|buffer| libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; each header points at a live iovec and buffer.
    let mut messages: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for (message, iovec) in messages.iter_mut().zip(&mut iovecs) {
        message.msg_hdr.msg_iov = iovec;
        message.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: as above; a read timeout bounds the wait.
    let received = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            messages.as_mut_ptr(),
            BATCH as u32,
            libc::MSG_WAITFORONE,
            ptr::null_mut(),
        )
    };
    received.max(0) as u64
}
