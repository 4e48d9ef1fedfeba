//! Raw UDP multicast, the floor every system is measured against: one message per datagram,
//! sendmmsg and recvmmsg in batches, plain forwarding and ping-pong.

use super::*;

/// `rate` datagrams of `size` bytes a second to `group` on eth0 for `seconds`: traffic at a
/// steady pace, whatever the receivers' number.
pub(super) fn paced_send(spec: &Spec<'_>) -> Outcome {
    let socket = raw_socket()?;
    let target = raw_target(spec, &socket)?;
    let payload = vec![0x5c; spec.usize("size")?];
    let rate = spec.u64("rate")?.max(1);
    let duration = spec.seconds("seconds")?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    let mut sent = 0;
    while began.elapsed() < duration {
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
        sent += send_many(&socket, &target, &payload, 1);
    }
    Ok(sender_report(sent, began, cpu))
}

pub(super) fn if_index(name: &str) -> u32 {
    let name = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: `name` is a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

pub(super) fn raw_socket() -> Result<Socket, String> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|err| err.to_string())?;
    socket
        .set_reuse_address(true)
        .map_err(|err| err.to_string())?;
    socket
        .set_multicast_all_v6(false)
        .map_err(|err| err.to_string())?;
    socket
        .set_multicast_hops_v6(8)
        .map_err(|err| err.to_string())?;
    // The same 8 MiB receive buffer sixcast asks for (SO_RCVBUFFORCE: root in the namespace).
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
        socket
            .set_recv_buffer_size(8 << 20)
            .map_err(|err| err.to_string())?;
    }
    Ok(socket)
}

/// A raw socket bound to `port` on every address, joined to `group` on eth0 unless unicast.
pub(super) fn raw_bound(port: u16, group: Option<Ipv6Addr>) -> Result<Socket, String> {
    let socket = raw_socket()?;
    socket
        .bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            port,
            0,
            0,
        )))
        .map_err(|err| err.to_string())?;
    if let Some(group) = group {
        socket
            .join_multicast_v6(&group, if_index("eth0"))
            .map_err(|err| err.to_string())?;
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|err| err.to_string())?;
    Ok(socket)
}

/// Where raw traffic goes: `target` (unicast) if the spec has one, else `group` on eth0.
pub(super) fn raw_target(spec: &Spec<'_>, socket: &Socket) -> Result<SockAddr, String> {
    if spec.0["target"].is_string() {
        return Ok(SockAddr::from(spec.addr("target")?));
    }
    let group: Ipv6Addr = spec
        .str("group")?
        .parse()
        .map_err(|err| format!("group: {err}"))?;
    let interface = if_index("eth0");
    socket
        .set_multicast_if_v6(interface)
        .map_err(|err| err.to_string())?;
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    Ok(SockAddr::from(SocketAddrV6::new(group, port, 0, interface)))
}

/// One message per datagram, `BATCH` at a time with sendmmsg.
pub(super) fn raw_send(spec: &Spec<'_>) -> Outcome {
    let socket = raw_socket()?;
    let target = raw_target(spec, &socket)?;
    let payload = vec![0x5c; spec.usize("size")?];
    let duration = spec.seconds("seconds")?;
    let mut pacer = Pacer::new(spec, BATCH as u64)?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    pacer.start();
    let mut sent = 0;
    while began.elapsed() < duration {
        // A burst larger than a batch goes out over several calls, due at once.
        let batch = usize::try_from(pacer.next(sent)).map_or(BATCH, |burst| burst.min(BATCH));
        sent += send_many(&socket, &target, &payload, batch);
    }
    Ok(sender_report(sent, began, cpu))
}

pub(super) fn raw_receiver_socket(spec: &Spec<'_>) -> Result<Socket, String> {
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    let group = match spec.0["group"].as_str() {
        Some(group) => Some(group.parse().map_err(|err| format!("group: {err}"))?),
        None => None,
    };
    raw_bound(port, group)
}

pub(super) fn raw_recv(spec: &Spec<'_>) -> Outcome {
    let socket = raw_receiver_socket(spec)?;
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    let mut buffers = vec![vec![0u8; RAW_BUFFER]; BATCH];
    ready()?;
    let mut tally = Tally::start();
    while tally.began.elapsed() < until {
        tally.add(recv_many(&socket, &mut buffers).len() as u64);
    }
    Ok(tally.report())
}

/// Plain unicast forwarding in user space: what arrives on `port` goes on to `target`, a batch
/// at a time.
pub(super) fn raw_forward(spec: &Spec<'_>) -> Outcome {
    let socket = raw_receiver_socket(spec)?;
    let target = SockAddr::from(spec.addr("target")?);
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    let mut buffers = vec![vec![0u8; RAW_BUFFER]; BATCH];
    ready()?;
    let mut tally = Tally::start();
    while tally.began.elapsed() < until {
        let lengths = recv_many(&socket, &mut buffers);
        for (buffer, len) in buffers.iter().zip(&lengths) {
            send_many(&socket, &target, &buffer[..*len], 1);
        }
        tally.add(lengths.len() as u64);
    }
    Ok(tally.report())
}

pub(super) fn raw_ping_pong(spec: &Spec<'_>) -> Outcome {
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    let group = |key| -> Result<Ipv6Addr, String> {
        spec.str(key)?
            .parse()
            .map_err(|err| format!("{key}: {err}"))
    };
    let (incoming, outgoing) = if pinging(spec)? {
        (group("pong_group")?, group("ping_group")?)
    } else {
        (group("ping_group")?, group("pong_group")?)
    };
    let socket = raw_bound(port, Some(incoming))?;
    let interface = if_index("eth0");
    socket
        .set_multicast_if_v6(interface)
        .map_err(|err| err.to_string())?;
    let socket = UdpSocket::from(socket);
    let target = SocketAddrV6::new(outgoing, port, 0, interface);
    let mut buffer = vec![0u8; RAW_BUFFER];
    let mut receive = |timeout: Duration| -> Result<Option<Vec<u8>>, String> {
        socket
            .set_read_timeout(Some(timeout.max(Duration::from_micros(1))))
            .map_err(|err| err.to_string())?;
        match socket.recv(&mut buffer) {
            Ok(len) => Ok(Some(buffer[..len].to_vec())),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(err.to_string()),
        }
    };
    let send = |payload: &[u8]| {
        socket
            .send_to(payload, target)
            .map(drop)
            .map_err(|err| err.to_string())
    };
    if pinging(spec)? {
        ping_loop(spec, &mut |payload| {
            send(payload)?;
            let deadline = Instant::now() + PONG_TIMEOUT;
            while Instant::now() < deadline {
                if let Some(echo) = receive(deadline.saturating_duration_since(Instant::now()))?
                    && echo.get(..8) == Some(&payload[..8])
                {
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

pub(super) fn send_many(socket: &Socket, target: &SockAddr, payload: &[u8], count: usize) -> u64 {
    let mut iovec = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: mmsghdr is plain data; each header points at live `iovec` and `target`.
    let mut messages: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for message in &mut messages[..count] {
        message.msg_hdr.msg_name = target.as_ptr().cast_mut().cast();
        message.msg_hdr.msg_namelen = target.len();
        message.msg_hdr.msg_iov = ptr::from_mut(&mut iovec);
        message.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the headers and what they point at outlive the call; count <= BATCH.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            messages.as_mut_ptr(),
            count as libc::c_uint,
            0,
        )
    };
    u64::try_from(sent).unwrap_or(0)
}

/// One recvmmsg (waiting at most the socket's read timeout); the lengths of what arrived.
pub(super) fn recv_many(socket: &Socket, buffers: &mut [Vec<u8>]) -> Vec<usize> {
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
    // SAFETY: as above; the socket's read timeout bounds the wait.
    let received = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            messages.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_WAITFORONE,
            ptr::null_mut(),
        )
    };
    let count = usize::try_from(received).unwrap_or(0);
    messages[..count]
        .iter()
        .map(|message| message.msg_len as usize)
        .collect()
}
