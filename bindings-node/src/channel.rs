//! `Context` and `Channel` (the core's `channel` module) with Node's ways to receive: a promise
//! (`recv`), a poll (`tryRecv`), async iteration and a callback subscription.
//!
//! Waiting costs no thread: a pending `recv`, an async iterator's step and a subscription are
//! tasks on napi-rs's Tokio runtime, parked in the channel's queue by the core's async receive
//! until a message arrives (libuv's thread pool is never used, so `fs`, `dns` and `crypto`
//! work is left alone). A subscription's task only signals; the JavaScript thread takes the
//! messages.

use std::{
    collections::BTreeMap,
    future::{Future, poll_fn},
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::Poll,
    time::Duration,
};

use napi::{
    Env, Result, Status,
    bindgen_prelude::{AsyncGenerator, Buffer, Either, Function, Object, PromiseRaw},
    threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode},
};
use napi_derive::napi;
use sixcast::{ErrorKind, crypto::KeyId};

use crate::{
    addr::{bytes_of, parse_address},
    config::{config_from_js, millis_or_forever},
    crypto::{ChannelKey, PublicKey, SigningKey, Token},
    error::OrThrow,
    events::Event,
    files::SentFile,
    message::Message,
    reachability::Reachability,
};

/// A context: one socket, one node id, any number of channels. Close it when done; a script
/// whose contexts are closed exits by itself.
#[napi]
pub struct Context {
    inner: sixcast::Context,
}

#[napi]
impl Context {
    /// Opens a context: validates the options, binds the UDP port and starts receiving. With
    /// `SIXCAST_LOG` set in the environment (`warn`, `info`, `sixcast=debug`, ...), the library
    /// logs to standard error.
    #[napi(constructor, ts_args_type = "options?: ContextOptions")]
    pub fn new(env: Env, options: Option<Object>) -> Result<Self> {
        crate::logging::init_from_env();
        let config = config_from_js(&env, options)?;
        let inner = sixcast::Context::new(config).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The channel called `name` (a string is taken as UTF-8), created on first use.
    #[napi]
    pub fn channel(&self, env: Env, name: Either<String, &[u8]>) -> Result<Channel> {
        let inner = self.inner.channel(bytes_of(&name)).or_throw(&env)?;
        Ok(Channel { inner })
    }

    /// Sends what is still packed, leaves every group and stops receiving. Pending receives
    /// reject with ERR_SIXCAST_CLOSED, iterations end, subscriptions stop. Closing twice is
    /// harmless.
    #[napi]
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// This context's node id (16 hex digits), carried in every datagram it sends.
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.inner.node_id().to_string()
    }

    /// The UDP port the context is bound to.
    #[napi(getter)]
    pub fn port(&self) -> u16 {
        self.inner.port()
    }

    /// The names of the interfaces the context joins and sends on.
    #[napi(getter)]
    pub fn interfaces(&self) -> Vec<String> {
        self.inner.interfaces()
    }

    /// Counters summed over every channel, plus datagrams no channel claimed.
    #[napi]
    pub fn stats(&self) -> Stats {
        self.inner.stats().into()
    }

    /// How the context reaches the multicast core through Stratum 0 (the latest probe, the
    /// relay in use, the offers, the last error); null without a `stratum0` option.
    #[napi]
    pub fn reachability(&self) -> Option<Reachability> {
        self.inner.reachability().map(Reachability::from)
    }

    /// The next event if one is waiting, else null.
    #[napi]
    pub fn try_event(&self, env: Env) -> Result<Option<Event>> {
        Ok(self.inner.try_event().or_throw(&env)?.map(Event::from))
    }

    /// The next event. Rejects with ERR_SIXCAST_TIMEOUT after `timeoutMs` (no limit when unset)
    /// and with ERR_SIXCAST_CLOSED once the context is closed and no event is left. Events are
    /// rare: the wait takes a thread of napi-rs's blocking pool (not libuv's).
    #[napi(ts_return_type = "Promise<Event>")]
    pub fn next_event<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<f64>,
    ) -> Result<PromiseRaw<'env, Event>> {
        let timeout = timeout_ms.map_or(Ok(None), |ms| millis_or_forever("timeoutMs", ms));
        let context = self.inner.clone();
        let waited = async move {
            match timeout {
                Ok(timeout) => tokio::task::spawn_blocking(move || {
                    context.event_timeout(timeout.unwrap_or(Duration::MAX))
                })
                .await
                .map_err(|err| napi::Error::from_reason(format!("the event wait failed: {err}"))),
                Err(err) => Ok(Err(err)),
            }
        };
        env.spawn_future_with_callback(waited, |env, event| event.map(Event::from).or_throw(env))
    }
}

/// A named channel of a context. `for await (const message of channel)` receives until the
/// context closes.
#[napi(async_iterator)]
pub struct Channel {
    pub(crate) inner: sixcast::Channel,
}

#[napi]
impl Channel {
    /// The channel's name.
    #[napi(getter)]
    pub fn name(&self) -> Buffer {
        self.inner.name().to_vec().into()
    }

    /// The group address original traffic of this channel is sent to.
    #[napi(getter)]
    pub fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The group relays re-send this channel's traffic to, or null if the profile has none.
    #[napi(getter)]
    pub fn relayed_group(&self) -> Option<String> {
        self.inner.relayed_group().map(|group| group.to_string())
    }

    /// Starts receiving the channel from any source on every interface of the context.
    #[napi]
    pub fn join(&self, env: Env) -> Result<()> {
        self.inner.join().or_throw(&env)
    }

    /// Starts receiving the channel from `source` only (source-specific multicast).
    #[napi]
    pub fn join_source(&self, env: Env, source: String) -> Result<()> {
        parse_address(&source)
            .and_then(|source| self.inner.join_source(source))
            .or_throw(&env)
    }

    /// Stops receiving the channel.
    #[napi]
    pub fn leave(&self, env: Env) -> Result<()> {
        self.inner.leave().or_throw(&env)
    }

    /// Queues a message (a string is sent as UTF-8). Small messages are packed together (unless
    /// `packing` is off) and large ones fragmented; datagrams leave in batches within `lingerMs`
    /// or at `flush()`, and after a linger without sending the next complete one leaves at once.
    /// Never waits for receivers, but blocks while the send rate (`sendRateMessages`,
    /// `sendRateBytes`) or a reliable channel's flow window holds the message back: at most
    /// `timeoutMs` (no limit when unset), then throws ERR_SIXCAST_TIMEOUT and queues nothing of
    /// the message.
    #[napi]
    pub fn send(
        &self,
        env: Env,
        data: Either<String, &[u8]>,
        timeout_ms: Option<f64>,
    ) -> Result<()> {
        let payload = bytes_of(&data);
        match timeout_ms.map(|ms| millis_or_forever("timeoutMs", ms)) {
            None | Some(Ok(None)) => self.inner.send(payload),
            Some(Ok(Some(timeout))) => self.inner.send_timeout(payload, timeout),
            Some(Err(err)) => Err(err),
        }
        .or_throw(&env)
    }

    /// Sends like `send()`, but never waits: throws ERR_SIXCAST_TIMEOUT, queueing nothing, when
    /// the send rate or a reliable channel's flow window would make `send()` wait (ZeroMQ's
    /// DONTWAIT).
    #[napi]
    pub fn try_send(&self, env: Env, data: Either<String, &[u8]>) -> Result<()> {
        self.inner.try_send(bytes_of(&data)).or_throw(&env)
    }

    /// Sends what waits (the partly filled datagram, a batch) now.
    #[napi]
    pub fn flush(&self, env: Env) -> Result<()> {
        self.inner.flush().or_throw(&env)
    }

    /// Seals everything sent from now on with `key`, and accepts only datagrams sealed with it
    /// or a key added with `addKey`. Receivers without the key deliver nothing and count the
    /// drops in `stats().drops`.
    #[napi]
    pub fn set_key(&self, env: Env, key: &ChannelKey) -> Result<()> {
        self.inner.set_key(&key.inner).or_throw(&env)
    }

    /// Accepts datagrams sealed with `key` too, without sending with it: for rotating keys.
    #[napi]
    pub fn add_key(&self, env: Env, key: &ChannelKey) -> Result<()> {
        self.inner.add_key(&key.inner).or_throw(&env)
    }

    /// Stops accepting datagrams sealed with the key of id `id`; returns whether the channel
    /// held it. Removing the send key makes the channel send plain datagrams again.
    #[napi]
    pub fn remove_key(&self, env: Env, id: u32) -> Result<bool> {
        self.inner.remove_key(KeyId(id)).or_throw(&env)
    }

    /// Signs everything sent from now on with `key`.
    #[napi]
    pub fn sign_with(&self, env: Env, key: &SigningKey) -> Result<()> {
        self.inner.sign_with(key.inner.clone()).or_throw(&env)
    }

    /// Accepts datagrams signed with `key`. From the first trusted key on, the channel accepts
    /// only datagrams signed by a trusted key.
    #[napi]
    pub fn trust(&self, env: Env, key: &PublicKey) -> Result<()> {
        self.inner.trust(key.inner).or_throw(&env)
    }

    /// Presents `token` with every signed datagram, so that receivers trusting its issuer
    /// accept this channel's signing key until the token expires. Throws
    /// ERR_SIXCAST_INVALID_CONFIG unless the token is for the key of `signWith` and this channel.
    #[napi]
    pub fn present(&self, env: Env, token: &Token) -> Result<()> {
        self.inner.present(token.inner).or_throw(&env)
    }

    /// Accepts datagrams signed by any key that presents an unexpired token of `issuer` for
    /// this channel. Like `trust`, makes the channel accept only signed datagrams.
    #[napi]
    pub fn trust_issuer(&self, env: Env, issuer: &PublicKey) -> Result<()> {
        self.inner.trust_issuer(issuer.inner).or_throw(&env)
    }

    /// Sends the file at `path` to every receiver of this channel (see `FileReceiver`), and
    /// resolves once every chunk was handed to the channel. Options: `passes` (how many times
    /// the whole file is sent, default 1, so that receivers that joined late complete it) and
    /// `name` (what receivers call it; default the path's last component). Use a `reliable`
    /// context, and close it to wait for the receivers' last repairs. Rejects with
    /// ERR_SIXCAST_INVALID_CONFIG for a name that is not plain (a path, or starting with `.`),
    /// 0 passes or bad options, ERR_SIXCAST_IO when the file cannot be read, and
    /// ERR_SIXCAST_MESSAGE_TOO_LARGE when it has too many chunks for the datagram size.
    #[napi(
        ts_args_type = "path: string, options?: SendFileOptions",
        ts_return_type = "Promise<SentFile>"
    )]
    pub fn send_file<'env>(
        &self,
        env: &'env Env,
        path: String,
        options: Option<Object>,
    ) -> Result<PromiseRaw<'env, SentFile>> {
        crate::files::send_file(env, &self.inner, path, options)
    }

    /// The next message. Rejects with ERR_SIXCAST_TIMEOUT after `timeoutMs` (no limit when
    /// unset) and with ERR_SIXCAST_CLOSED when the context closes.
    #[napi(ts_return_type = "Promise<Message>")]
    pub fn recv<'env>(
        &self,
        env: &'env Env,
        timeout_ms: Option<f64>,
    ) -> Result<PromiseRaw<'env, Message>> {
        let timeout = timeout_ms.map_or(Ok(None), |ms| millis_or_forever("timeoutMs", ms));
        let channel = self.inner.clone();
        let received = async move {
            match timeout {
                Ok(timeout) => receive(channel, timeout).await,
                Err(err) => Ok(Err(err)),
            }
        };
        env.spawn_future_with_callback(received, |env, message| {
            message.map(Message::from).or_throw(env)
        })
    }

    /// The next message if one is waiting, else null.
    #[napi]
    pub fn try_recv(&self, env: Env) -> Result<Option<Message>> {
        let message = self.inner.try_recv().or_throw(&env)?;
        Ok(message.map(Message::from))
    }

    /// Calls `callback` with each message until `stop()` or until the context closes. While
    /// active, the subscription keeps the process alive. Messages go to one taker each: do not
    /// mix a subscription with `recv()` on the same channel unless that is what you want.
    #[napi(ts_args_type = "callback: (message: Message) => void")]
    pub fn subscribe(&self, env: &Env, callback: Function<Message, ()>) -> Result<Subscription> {
        let callback = callback.create_ref()?;
        let shared = Arc::new(Shared::default());
        let (channel, delivering) = (self.inner.clone(), Arc::clone(&shared));
        // Runs on the JavaScript thread when the thread below signals that messages wait.
        let deliver = env.create_function_from_closure("deliver", move |call| {
            let delivered = callback
                .borrow_back(call.env)
                .and_then(|callback| delivering.deliver(&channel, &callback));
            lock(&delivering.state).signalled = false;
            delivering.changed.notify_waiters();
            delivered
        })?;
        lock(&shared.state).signal = Some(deliver.build_threadsafe_function().build()?);
        let (channel, signalling) = (self.inner.clone(), Arc::clone(&shared));
        napi::bindgen_prelude::spawn(
            async move { signalling.signal_until_stopped(&channel).await },
        );
        Ok(Subscription { shared })
    }

    /// This channel's counters.
    #[napi]
    pub fn stats(&self) -> Stats {
        self.inner.stats().into()
    }

    /// Loss per sender: every sender this channel tracks now (up to 4,096, the least recently
    /// heard forgotten first), sorted by node id, with its messages never heard.
    #[napi]
    pub fn sender_losses(&self) -> Vec<SenderLoss> {
        self.inner
            .sender_losses()
            .into_iter()
            .map(SenderLoss::from)
            .collect()
    }
}

#[napi]
impl AsyncGenerator for Channel {
    type Yield = Message;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<Self::Next>,
    ) -> impl Future<Output = Result<Option<Self::Yield>>> + Send + 'static {
        let channel = self.inner.clone();
        async move {
            let received = receive(channel, None).await?;
            match received {
                Ok(message) => Ok(Some(message.into())),
                Err(err) if err.kind() == ErrorKind::Closed => Ok(None),
                // A receive without a deadline fails only when the context closes. Should the
                // core add a failure, it still surfaces, though without a `code`: that needs
                // the JavaScript thread, which napi-rs does not lend to generators.
                Err(err) => Err(napi::Error::new(Status::GenericFailure, err.to_string())),
            }
        }
    }
}

/// Waits for the next message as a parked task (see the module documentation); no `timeout`
/// waits until a message arrives or the context closes.
async fn receive(
    channel: sixcast::Channel,
    timeout: Option<Duration>,
) -> Result<sixcast::Result<sixcast::Message>> {
    let received = channel.recv_async();
    Ok(match timeout {
        None => received.await,
        Some(timeout) => match tokio::time::timeout(timeout, received).await {
            Ok(message) => message,
            // The core's Timeout error, unless a message arrived just now.
            Err(_elapsed) => channel.recv_timeout(Duration::ZERO),
        },
    })
}

/// Calls `deliver` (see `Channel::subscribe`) on the JavaScript thread.
type Signal = ThreadsafeFunction<(), (), (), Status, false>;

/// Messages passed to the callback per signal, at most, so that a busy channel leaves the event
/// loop time for other work. The rest wait in the channel's queue, whose capacity bounds memory
/// (and counts what overflows) as it does for `recv()`.
const MAX_BATCH: usize = 1024;

/// A running `subscribe()`.
#[napi]
pub struct Subscription {
    shared: Arc<Shared>,
}

#[napi]
impl Subscription {
    /// Stops the subscription: the callback is not called again, and the process no longer
    /// stays alive for it. Messages not yet passed to the callback stay in the channel for the
    /// next receive. Stopping twice is harmless.
    #[napi]
    pub fn stop(&self) {
        let signal = lock(&self.shared.state).signal.take();
        self.shared.changed.notify_waiters();
        if let Some(signal) = signal {
            // Abort, not release: a release would still run the delivery already queued.
            #[allow(deprecated)]
            let _ = signal.abort();
        }
    }

    /// Whether the subscription still delivers messages (false after `stop()` or once the
    /// context closed).
    #[napi(getter)]
    pub fn active(&self) -> bool {
        lock(&self.shared.state).signal.is_some()
    }
}

/// What a subscription's task and the JavaScript thread share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Notified when a delivery ends or the subscription stops.
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// `None` once stopped or ended.
    signal: Option<Signal>,
    /// Whether a delivery is queued or running; the subscription's task waits for its end
    /// before it looks for messages again.
    signalled: bool,
}

impl Shared {
    /// The subscription's task: signals the JavaScript thread whenever messages wait, until
    /// the subscription is stopped or the context closes. It never takes a message itself.
    async fn signal_until_stopped(&self, channel: &sixcast::Channel) {
        loop {
            // Until the last delivery has ended (or the subscription stopped).
            loop {
                // Registered before the state is read, so no notification falls in between.
                let changed = self.changed.notified();
                {
                    let state = lock(&self.state);
                    if state.signal.is_none() {
                        return;
                    }
                    if !state.signalled {
                        break;
                    }
                }
                changed.await;
            }
            let mut stopped = pin!(self.changed.notified());
            if lock(&self.state).signal.is_none() {
                return;
            }
            let mut readable = pin!(channel.readable());
            let outcome = poll_fn(|cx| match readable.as_mut().poll(cx) {
                Poll::Ready(outcome) => Poll::Ready(Some(outcome)),
                Poll::Pending => stopped.as_mut().poll(cx).map(|()| None),
            })
            .await;
            match outcome {
                // Stopped, or a delivery ended: look at the state again.
                None => {}
                Some(Ok(())) => {
                    let state = &mut *lock(&self.state);
                    if let Some(signal) = &state.signal {
                        signal.call((), ThreadsafeFunctionCallMode::NonBlocking);
                        state.signalled = true;
                    }
                }
                Some(Err(_closed)) => {
                    // Releasing (dropping) the signal lets a queued delivery run, then lets the
                    // process exit.
                    lock(&self.state).signal.take();
                    return;
                }
            }
        }
    }

    /// Passes waiting messages to `callback` while the subscription is active: messages are
    /// taken only here, so none is taken that the callback will not get.
    fn deliver(&self, channel: &sixcast::Channel, callback: &Function<Message, ()>) -> Result<()> {
        for _ in 0..MAX_BATCH {
            if lock(&self.state).signal.is_none() {
                break;
            }
            match channel.try_recv() {
                Ok(Some(message)) => callback.call(message.into())?,
                // Nothing waits, or the context closed (the subscription's thread ends it).
                _ => break,
            }
        }
        Ok(())
    }
}

/// Locks `mutex`; a panic elsewhere while holding it leaves only an `Option` and a flag behind,
/// which are still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a channel knows of one sender (`Channel.senderLosses()`).
#[napi(object, object_from_js = false)]
pub struct SenderLoss {
    /// The sender's node id, 16 hex digits.
    pub sender: String,
    /// The highest sequence number of it delivered or given up (exact below 2^53); absent
    /// when none was.
    pub highest_seq: Option<f64>,
    /// Its messages never heard: its share of `stats().lost`, counted the same way.
    pub lost: f64,
}

impl From<sixcast::SenderLoss> for SenderLoss {
    fn from(loss: sixcast::SenderLoss) -> Self {
        Self {
            sender: loss.sender.to_string(),
            highest_seq: loss.highest_seq.map(|seq| seq as f64),
            lost: loss.lost as f64,
        }
    }
}

/// Counters of a channel or a whole context; every datagram is accounted for.
#[napi(object, object_from_js = false)]
pub struct Stats {
    /// Messages accepted by `send`.
    pub messages_sent: f64,
    /// Payload bytes accepted by `send`.
    pub bytes_sent: f64,
    /// Datagrams handed to the kernel (once per interface).
    pub datagrams_sent: f64,
    /// Messages delivered to the receive queue.
    pub messages_received: f64,
    /// Payload bytes delivered to the receive queue.
    pub bytes_received: f64,
    /// Datagrams received, including dropped ones.
    pub datagrams_received: f64,
    /// Messages dropped as already delivered.
    pub duplicates: f64,
    /// Datagrams dropped because they did not decode.
    pub malformed: f64,
    /// Datagrams of this context's own sending heard back through loopback.
    pub own_dropped: f64,
    /// Messages dropped because the receive queue was full.
    pub queue_overflow: f64,
    /// Messages never heard: sequence numbers a sender skipped, less those that arrived late.
    pub lost: f64,
    /// Fragmented messages given up.
    pub reassembly_dropped: f64,
    /// Datagrams for a group no channel of this context has (context totals only).
    pub unknown_group: f64,
    /// NACKs this node sent for packets of reliable senders it missed.
    pub nacks_sent: f64,
    /// NACKs received for this node's own packets (reliable contexts).
    pub nacks_received: f64,
    /// Repair datagrams sent: parity, re-sent packets, and the announcements of each burst's end.
    pub repairs_sent: f64,
    /// Bytes of the repair datagrams sent.
    pub repair_bytes_sent: f64,
    /// Parity datagrams received for packets this node still needed or had.
    pub repairs_received: f64,
    /// Packets of reliable senders rebuilt from parity.
    pub packets_recovered: f64,
    /// Packets of reliable senders given up (not repaired in time); their messages count in
    /// `lost`.
    pub packets_lost: f64,
    /// What the channel's keys refused, by reason (every name of `dropReasons()`): datagrams,
    /// and messages for `replay`.
    #[napi(ts_type = "Record<string, number>")]
    pub drops: BTreeMap<&'static str, f64>,
}

impl From<sixcast::Stats> for Stats {
    fn from(stats: sixcast::Stats) -> Self {
        // Counters become JavaScript numbers, exact below 2^53.
        Self {
            messages_sent: stats.messages_sent as f64,
            bytes_sent: stats.bytes_sent as f64,
            datagrams_sent: stats.datagrams_sent as f64,
            messages_received: stats.messages_received as f64,
            bytes_received: stats.bytes_received as f64,
            datagrams_received: stats.datagrams_received as f64,
            duplicates: stats.duplicates as f64,
            malformed: stats.malformed as f64,
            own_dropped: stats.own_dropped as f64,
            queue_overflow: stats.queue_overflow as f64,
            lost: stats.lost as f64,
            reassembly_dropped: stats.reassembly_dropped as f64,
            unknown_group: stats.unknown_group as f64,
            nacks_sent: stats.nacks_sent as f64,
            nacks_received: stats.nacks_received as f64,
            repairs_sent: stats.repairs_sent as f64,
            repair_bytes_sent: stats.repair_bytes_sent as f64,
            repairs_received: stats.repairs_received as f64,
            packets_recovered: stats.packets_recovered as f64,
            packets_lost: stats.packets_lost as f64,
            drops: stats
                .drops
                .iter()
                .map(|(reason, count)| (reason.name(), count as f64))
                .collect(),
        }
    }
}
