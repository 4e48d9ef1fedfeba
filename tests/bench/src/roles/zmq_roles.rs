//! ZeroMQ PUB/SUB over TCP (libzmq through the zmq crate), the peer of the headline tables,
//! plain or with CURVE (its encrypted and authenticated transport).

use super::*;

pub(super) fn zmq_error(err: zmq::Error) -> String {
    err.to_string()
}

/// The publisher's CURVE secret key (Z85) if the spec protects the cell: then the publisher is
/// a CURVE server, and every subscriber encrypts to it (ZeroMQ's protected transport).
fn curve_server(socket: &zmq::Socket, spec: &Spec<'_>) -> Result<(), String> {
    let Some(secret) = spec.0["curve_secret"].as_str() else {
        return Ok(());
    };
    socket.set_curve_server(true).map_err(zmq_error)?;
    socket
        .set_curve_secretkey(secret.as_bytes())
        .map_err(zmq_error)
}

/// A subscriber of a CURVE publisher (its public key in the spec) with a key pair of its own.
fn curve_client(socket: &zmq::Socket, spec: &Spec<'_>) -> Result<(), String> {
    let Some(server) = spec.0["curve_server"].as_str() else {
        return Ok(());
    };
    let own = zmq::CurveKeyPair::new().map_err(zmq_error)?;
    socket
        .set_curve_serverkey(server.as_bytes())
        .map_err(zmq_error)?;
    socket
        .set_curve_publickey(&own.public_key)
        .map_err(zmq_error)?;
    socket
        .set_curve_secretkey(&own.secret_key)
        .map_err(zmq_error)
}

/// Lossless PUB: an XPUB that blocks at its high-water mark instead of dropping, and that starts
/// only once every subscriber has subscribed.
pub(super) fn zmq_send(spec: &Spec<'_>) -> Outcome {
    let context = zmq::Context::new();
    let mut socket = context.socket(zmq::XPUB).map_err(zmq_error)?;
    socket.set_ipv6(true).map_err(zmq_error)?;
    socket.set_xpub_verbose(true).map_err(zmq_error)?;
    let on: libc::c_int = 1;
    // SAFETY: the socket is live; the option value is a c_int and its size is passed.
    let set = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as libc::c_int,
            ptr::from_ref(&on).cast(),
            size_of::<libc::c_int>(),
        )
    };
    if set != 0 {
        return Err("cannot set ZMQ_XPUB_NODROP".into());
    }
    curve_server(&socket, spec)?;
    socket
        .bind(&format!("tcp://[::]:{}", spec.u64("port")?))
        .map_err(zmq_error)?;
    socket.set_rcvtimeo(15_000).map_err(zmq_error)?;
    for _ in 0..spec.u64("subscribers")? {
        socket
            .recv_bytes(0)
            .map_err(|err| format!("waiting for subscribers: {err}"))?;
    }
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
            socket.send(&payload, 0).map_err(zmq_error)?;
        }
        sent += burst;
    }
    let report = sender_report(sent, began, cpu);
    // The end mark: lossless and in order, so a subscriber has everything once it arrives.
    socket.send(Vec::<u8>::new(), 0).map_err(zmq_error)?;
    Ok(report)
}

pub(super) fn zmq_recv(spec: &Spec<'_>) -> Outcome {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::SUB).map_err(zmq_error)?;
    socket.set_ipv6(true).map_err(zmq_error)?;
    socket.set_rcvtimeo(100).map_err(zmq_error)?;
    curve_client(&socket, spec)?;
    socket.connect(spec.str("connect")?).map_err(zmq_error)?;
    socket.set_subscribe(b"").map_err(zmq_error)?;
    // Lossless: wait for the end mark, however late, up to a generous bound.
    let until = spec.seconds("seconds")? + Duration::from_secs(20);
    let mut message = zmq::Message::new();
    ready()?;
    let mut tally = Tally::start();
    'receiving: while tally.began.elapsed() < until {
        // Take what is queued without waiting (or reading the clock); wait only when nothing is.
        let mut taken = 0;
        loop {
            match socket.recv(&mut message, zmq::DONTWAIT) {
                Ok(()) if message.is_empty() => {
                    tally.add(taken);
                    break 'receiving;
                }
                Ok(()) => taken += 1,
                Err(zmq::Error::EAGAIN) => break,
                Err(err) => return Err(err.to_string()),
            }
        }
        tally.add(taken);
        match socket.recv(&mut message, 0) {
            Ok(()) if message.is_empty() => break,
            Ok(()) => tally.add(1),
            Err(zmq::Error::EAGAIN) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
    Ok(tally.report())
}

pub(super) fn zmq_ping_pong(spec: &Spec<'_>) -> Outcome {
    let context = zmq::Context::new();
    let publisher = context.socket(zmq::PUB).map_err(zmq_error)?;
    publisher.set_ipv6(true).map_err(zmq_error)?;
    publisher
        .bind(&format!("tcp://[::]:{}", spec.u64("port")?))
        .map_err(zmq_error)?;
    let subscriber = context.socket(zmq::SUB).map_err(zmq_error)?;
    subscriber.set_ipv6(true).map_err(zmq_error)?;
    subscriber
        .connect(spec.str("connect")?)
        .map_err(zmq_error)?;
    subscriber.set_subscribe(b"").map_err(zmq_error)?;
    let mut message = zmq::Message::new();
    let mut receive = |timeout: Duration| -> Result<Option<Vec<u8>>, String> {
        let millis = i32::try_from(timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        subscriber.set_rcvtimeo(millis).map_err(zmq_error)?;
        match subscriber.recv(&mut message, 0) {
            Ok(()) => Ok(Some(message.to_vec())),
            Err(zmq::Error::EAGAIN) => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    };
    let send = |payload: &[u8]| publisher.send(payload, 0).map_err(zmq_error);
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
