//! The sixcast roles: send and receive (plain, unpacked, reliable, protected), ping and pong,
//! many channels, a reassembly flood, and a relay with raw tunnel clients.

use super::*;

pub(super) fn sixcast_config(spec: &Spec<'_>) -> Result<Config, String> {
    let mut config = Config::default();
    config.max_datagram_size = spec.usize("datagram")?;
    config.hop_limit = u8::try_from(spec.u64("hops")?).map_err(|err| err.to_string())?;
    match spec.str("system")? {
        // Every message in a datagram of its own; the datagrams still leave in batches.
        "sixcast-unpacked" => config.packing = false,
        // Receivers repair what they miss; the sender keeps pace with the slowest.
        "sixcast-reliable" | "sixcast-reliable-sealed" | "sixcast-reliable-signed" => {
            config.reliable = true;
        }
        _ => {}
    }
    if let Some(stratum0) = spec.0["stratum0"].as_str() {
        config.stratum0 = Some(stratum0.parse().map_err(|err| format!("{err}"))?);
    }
    Ok(config)
}

pub(super) fn sixcast_send_or_recv(spec: &Spec<'_>) -> Outcome {
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let channel = context
        .channel(spec.str("channel")?)
        .map_err(|err| err.to_string())?;
    let sending = spec.str("role")? == "send";
    protect(spec.str("system")?, &channel, sending).map_err(|err| err.to_string())?;
    if sending {
        sixcast_send(&context, &channel, spec)
    } else {
        sixcast_recv(&context, &channel, spec)
    }
}

/// Keys of the protected systems: every process of a cell derives the same ones.
pub(super) fn protect(system: &str, channel: &Channel, sending: bool) -> sixcast::Result<()> {
    let signer = SigningKey::from_seed([9; 32]);
    if matches!(
        system,
        "sixcast-reliable-sealed" | "sixcast-reliable-signed"
    ) {
        channel.set_key(&ChannelKey::from_bytes(KeyId(1), [7; 32]))?;
    }
    if system == "sixcast-reliable-signed" {
        if sending {
            channel.sign_with(signer)?;
        } else {
            channel.trust(signer.public_key())?;
        }
    }
    Ok(())
}

pub(super) fn sixcast_send(context: &Context, channel: &Channel, spec: &Spec<'_>) -> Outcome {
    let payload = vec![0x5c; spec.usize("size")?];
    let duration = spec.seconds("seconds")?;
    let mut pacer = Pacer::new(spec, 64)?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    pacer.start();
    let mut sent = 0;
    while began.elapsed() < duration {
        let burst = pacer.next(sent);
        for _ in 0..burst {
            channel.send(&payload).map_err(|err| err.to_string())?;
        }
        sent += burst;
    }
    channel.flush().map_err(|err| err.to_string())?;
    let mut report = sender_report(sent, began, cpu);
    let stats = channel.stats();
    report["datagrams_sent"] = json!(stats.datagrams_sent);
    report["messages_sent"] = json!(stats.messages_sent);
    // Closing a reliable context waits for its receivers' last repairs.
    context.close();
    let stats = channel.stats();
    report["nacks_received"] = json!(stats.nacks_received);
    report["repairs_sent"] = json!(stats.repairs_sent);
    report["repair_bytes"] = json!(stats.repair_bytes_sent);
    Ok(report)
}

pub(super) fn sixcast_recv(context: &Context, channel: &Channel, spec: &Spec<'_>) -> Outcome {
    channel.join().map_err(|err| err.to_string())?;
    if context.reachability().is_some() {
        // Through a relay: ready only once the tunnel is open.
        let settle = Instant::now() + Duration::from_secs(15);
        while context
            .reachability()
            .is_some_and(|reach| reach.relay.is_none())
        {
            if Instant::now() > settle {
                return Err("no relay tunnel within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    ready()?;
    let mut tally = Tally::start();
    let deadline = tally.began + until;
    loop {
        // Take what is queued without reading the clock; wait only when nothing is.
        let mut taken = 0;
        while let Ok(Some(_)) = channel.try_recv() {
            taken += 1;
        }
        tally.add(taken);
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => tally.add(1),
            Err(err) if err.kind() == ErrorKind::Timeout => break,
            Err(err) => return Err(err.to_string()),
        }
    }
    let mut report = tally.report();
    // What the library counted: where a shortfall went.
    let stats = channel.stats();
    report["lost"] = json!(stats.lost);
    report["queue_overflow"] = json!(stats.queue_overflow);
    report["packets_lost"] = json!(stats.packets_lost);
    report["nacks_sent"] = json!(stats.nacks_sent);
    report["repairs_received"] = json!(stats.repairs_received);
    report["datagrams_received"] = json!(stats.datagrams_received);
    Ok(report)
}

pub(super) fn sixcast_ping_pong(spec: &Spec<'_>) -> Outcome {
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let ping = context.channel("rtt/ping").map_err(|err| err.to_string())?;
    let pong = context.channel("rtt/pong").map_err(|err| err.to_string())?;
    let (incoming, outgoing) = if pinging(spec)? {
        (pong, ping)
    } else {
        (ping, pong)
    };
    incoming.join().map_err(|err| err.to_string())?;
    let receive = |timeout| match incoming.recv_timeout(timeout) {
        Ok(message) => Ok(Some(message.payload)),
        Err(err) if err.kind() == ErrorKind::Timeout => Ok(None),
        Err(err) => Err(err.to_string()),
    };
    // A latency-minded application flushes after each send rather than waiting for the linger.
    let send = |payload: &[u8]| {
        outgoing
            .send(payload)
            .and_then(|()| outgoing.flush())
            .map_err(|err| err.to_string())
    };
    if pinging(spec)? {
        ping_loop(spec, &mut |payload| {
            send(payload)?;
            let deadline = Instant::now() + PONG_TIMEOUT;
            while let Some(echo) = receive(deadline.saturating_duration_since(Instant::now()))? {
                if echo[..8] == payload[..8] {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    } else {
        pong_loop(spec, &mut || {
            Ok(match receive(Duration::from_millis(100))? {
                Some(payload) => {
                    send(&payload)?;
                    true
                }
                None => false,
            })
        })
    }
}

/// One context joined to `channels` channels, receiving on all of them: what it costs.
pub(super) fn scale_recv(spec: &Spec<'_>) -> Outcome {
    let count = spec.usize("channels")?;
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let mut channels = Vec::with_capacity(count);
    for index in 0..count {
        let channel = context
            .channel(format!("scale/{index}"))
            .map_err(|err| err.to_string())?;
        channel
            .join()
            .map_err(|err| format!("joining channel {index}: {err}"))?;
        channels.push(channel);
    }
    let deadline = spec.seconds("seconds")?;
    ready()?;
    let began = Instant::now();
    let mut heard = vec![false; count];
    let mut heard_count = 0;
    while heard_count < count && began.elapsed() < deadline {
        let mut any = false;
        for (index, channel) in channels.iter().enumerate() {
            while let Ok(Some(_)) = channel.try_recv() {
                any = true;
                if !heard[index] {
                    heard[index] = true;
                    heard_count += 1;
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(json!({
        "channels": count,
        "heard": heard_count,
        "rss_kib": proc_status("VmRSS"),
        "threads": proc_status("Threads"),
    }))
}

pub(super) fn scale_send(spec: &Spec<'_>) -> Outcome {
    let count = spec.usize("channels")?;
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let channels = (0..count)
        .map(|index| context.channel(format!("scale/{index}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| err.to_string())?;
    ready()?;
    // A few rounds, spaced, so that a datagram lost to a burst is made up by the next round.
    for round in 0..3u8 {
        for channel in &channels {
            channel.send(&[round; 64]).map_err(|err| err.to_string())?;
            channel.flush().map_err(|err| err.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(json!({ "sent": 3 * count }))
}

/// A context taking a flood of first fragments of messages that never complete: its RSS, and
/// the memory its channel charges for partial messages (`Stats::reassembly_bytes`), at their
/// peaks.
pub(super) fn flood_recv(spec: &Spec<'_>) -> Outcome {
    let mut config = sixcast_config(spec)?;
    config.reassembly_memory = spec.usize("reassembly_memory")?;
    let context = Context::new(config).map_err(|err| err.to_string())?;
    let channel = context
        .channel(spec.str("channel")?)
        .map_err(|err| err.to_string())?;
    channel.join().map_err(|err| err.to_string())?;
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    let rss_before = proc_status("VmRSS");
    ready()?;
    let began = Instant::now();
    let (mut peak, mut charged) = (rss_before, 0);
    while began.elapsed() < until {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(proc_status("VmRSS"));
        charged = charged.max(channel.stats().reassembly_bytes);
    }
    let stats = channel.stats();
    Ok(json!({
        "rss_before_kib": rss_before,
        "rss_peak_kib": peak,
        "reassembly_peak_kib": charged / 1024,
        "datagrams": stats.datagrams_received,
        "reassembly_dropped": stats.reassembly_dropped,
        "messages": stats.messages_received,
    }))
}

/// Sends the first fragment of ever new large messages to a channel's group: partial messages
/// that never complete. From one sender, or (`fresh_senders`) each from a sender of its own,
/// which also fills the receiver's table of senders.
pub(super) fn flood_send(spec: &Spec<'_>) -> Outcome {
    let datagram = spec.usize("datagram")?;
    let group: Ipv6Addr = spec
        .str("group")?
        .parse()
        .map_err(|err| format!("group: {err}"))?;
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    let duration = spec.seconds("seconds")?;
    let socket = raw_socket()?;
    let interface = if_index("eth0");
    socket
        .set_multicast_if_v6(interface)
        .map_err(|err| err.to_string())?;
    let target = SockAddr::from(SocketAddrV6::new(group, port, 0, interface));
    let message = vec![0xf1; 1 << 20];
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    let mut sent = 0u64;
    let mut ready_datagrams = Vec::new();
    let fresh_senders = spec.0["fresh_senders"] == true;
    let new_packer = || {
        let node = sixcast::NodeId::random().map_err(|err| err.to_string())?;
        sixcast::wire::Packer::new(node, datagram, 1 << 20).map_err(|err| err.to_string())
    };
    let mut packer = new_packer()?;
    while began.elapsed() < duration {
        if fresh_senders {
            packer = new_packer()?;
        }
        packer
            .push(&message, &mut ready_datagrams)
            .map_err(|err| err.to_string())?;
        let first = ready_datagrams.swap_remove(0);
        ready_datagrams.clear();
        sent += send_many(&socket, &target, &first, 1);
    }
    Ok(sender_report(sent, began, cpu))
}

/// A relay in a process of its own, so that its memory is measured alone: reports its RSS idle
/// (before any client), with every client joined, and at its peak, and its CPU time and the
/// datagrams it passed down tunnels during `seconds` after `go`.
pub(super) fn relay_serve(spec: &Spec<'_>) -> Outcome {
    let mut config = RelayConfig::default();
    config.hop_limit = u8::try_from(spec.u64("hops")?).map_err(|err| err.to_string())?;
    let relay = Relay::spawn(config).map_err(|err| err.to_string())?;
    let rss_idle = proc_status("VmRSS");
    ready()?;
    let rss_joined = proc_status("VmRSS");
    let (before, cpu) = (relay.stats(), cpu_time());
    let began = Instant::now();
    std::thread::sleep(spec.seconds("seconds")?);
    let (after, cpu) = (relay.stats(), cpu_time() - cpu);
    Ok(json!({
        "tunnels": after.tunnels,
        "refused": after.refused,
        "rss_idle_kib": rss_idle,
        "rss_joined_kib": rss_joined,
        "rss_kib": proc_status("VmRSS"),
        "rss_peak_kib": proc_status("VmHWM"),
        "threads": proc_status("Threads"),
        "seconds": began.elapsed().as_secs_f64(),
        "cpu_seconds": cpu.as_secs_f64(),
        "datagrams_down": after.datagrams_down - before.datagrams_down,
    }))
}

/// Waits until some of `sockets` are readable (at most `timeout`); their indices.
pub(super) fn readable(sockets: &[UdpSocket], timeout: Duration) -> Vec<usize> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|socket| libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live array of `fds.len()` pollfds.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if ready <= 0 {
        return Vec::new();
    }
    fds.iter()
        .enumerate()
        .filter(|(_, fd)| fd.revents & libc::POLLIN != 0)
        .map(|(index, _)| index)
        .collect()
}

/// A tunnel client's handshake so far: the nonce of its HELLO, and whether the relay
/// acknowledged its JOIN.
pub(super) struct Handshake {
    nonce: u64,
    open: bool,
}

/// `count` tunnel clients, each a UDP socket of its own (the relay knows a client by its address
/// and port), that open a tunnel to `relay` with the client side of the handshake (HELLO,
/// CHALLENGE, JOIN of `group`, KEEPALIVE) and then count what comes down their tunnels.
pub(super) fn tunnel_clients(spec: &Spec<'_>) -> Outcome {
    let count = spec.usize("count")?;
    let relay = spec.addr("relay")?;
    let group: Ipv6Addr = spec
        .str("group")?
        .parse()
        .map_err(|err| format!("group: {err}"))?;
    let sockets = (0..count)
        .map(|_| {
            let socket = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| format!("binding a client socket: {err}"))?;
    let encode = |message: &Control<'_>| message.to_vec().map_err(|err| err.to_string());
    let mut clients: Vec<Handshake> = (0..count)
        .map(|index| Handshake {
            nonce: 0x5ca1_e000_0000 + index as u64,
            open: false,
        })
        .collect();
    let mut buffer = vec![0u8; RAW_BUFFER];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open = 0;
    while open < count {
        if Instant::now() > deadline {
            return Err(format!("only {open} of {count} tunnels opened within 20 s"));
        }
        // (Re)send HELLO for every client not open yet: a lost datagram only costs a round.
        for (socket, client) in sockets.iter().zip(&clients) {
            if !client.open {
                let _ = socket.send_to(
                    &encode(&Control::Hello(control::Hello {
                        nonce: client.nonce,
                    }))?,
                    relay,
                );
            }
        }
        let round = Instant::now() + Duration::from_millis(500);
        while open < count && Instant::now() < round {
            for index in readable(&sockets, Duration::from_millis(50)) {
                while let Ok((length, _)) = sockets[index].recv_from(&mut buffer) {
                    let client = &mut clients[index];
                    match control::decode(&buffer[..length]) {
                        Ok(Control::Challenge(control::Challenge {
                            nonce,
                            mac,
                            limit: false,
                            ..
                        })) if nonce == client.nonce => {
                            let join = Control::Join(control::Join {
                                nonce,
                                mac,
                                groups: vec![group],
                            });
                            let _ = sockets[index].send_to(&encode(&join)?, relay);
                        }
                        Ok(Control::Keepalive(control::Keepalive { nonce }))
                            if nonce == client.nonce && !client.open =>
                        {
                            client.open = true;
                            open += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    ready()?;
    let began = Instant::now();
    let mut received = vec![0u64; count];
    while began.elapsed() < until {
        for index in readable(&sockets, Duration::from_millis(50)) {
            while let Ok((length, _)) = sockets[index].recv_from(&mut buffer) {
                if matches!(control::decode(&buffer[..length]), Ok(Control::Data(_))) {
                    received[index] += 1;
                }
            }
        }
    }
    Ok(json!({
        "clients": count,
        "received": received.iter().sum::<u64>(),
        "clients_heard": received.iter().filter(|&&count| count > 0).count(),
        "least_received": received.iter().min().copied().unwrap_or(0),
    }))
}
