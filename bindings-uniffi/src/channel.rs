//! [`Context`] and [`Channel`]: the core's objects behind UniFFI handles, and the records
//! they return.

use std::{collections::HashMap, sync::Arc, time::Duration};

use sixcast::crypto::KeyId;

use crate::{
    addr::parse_address,
    config::Config,
    crypto::{ChannelKey, PublicKey, SigningKey, Token},
    error::Result,
    events::Event,
};

/// A message received on a channel, with where it came from and how it arrived.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Message {
    /// The application bytes.
    pub payload: Vec<u8>,
    /// The address the datagram came from (without a scope id; see `interface`).
    pub source: String,
    /// The UDP port the datagram came from.
    pub source_port: u16,
    /// The group the datagram was sent to: the channel's group, or its relayed form.
    pub group: String,
    /// Index of the interface the datagram arrived on (`interfaceIndex` in Kotlin, where
    /// `interface` is a keyword).
    pub interface: u32,
    /// Name of that interface.
    pub interface_name: String,
    /// The sending context's node id, 16 hex digits (all zero for the librecast profile).
    pub sender: String,
    /// The sender's sequence number of this message on this channel.
    pub seq: u64,
    /// Whether a relay or gateway re-sent this message (it arrived on the relayed group).
    pub relayed: bool,
    /// How the message arrived: `native`, `relay` or `gateway` (re-sent by this segment's
    /// Stratum 1 gateway).
    pub path: String,
}

impl From<sixcast::Message> for Message {
    fn from(message: sixcast::Message) -> Self {
        Self {
            payload: message.payload,
            source: message.source.ip().to_string(),
            source_port: message.source.port(),
            group: message.group.to_string(),
            interface: message.interface,
            interface_name: message.interface_name.to_string(),
            sender: message.sender.to_string(),
            seq: message.seq,
            relayed: message.relayed,
            path: message.path.name().to_owned(),
        }
    }
}

/// Counters of a channel, or of a whole context (the sum of its channels plus what no channel
/// claimed).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Stats {
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Payload bytes accepted by `send`.
    pub bytes_sent: u64,
    /// Datagrams handed to the kernel (once per interface).
    pub datagrams_sent: u64,
    /// Messages delivered to the application's queue.
    pub messages_received: u64,
    /// Payload bytes delivered to the application's queue.
    pub bytes_received: u64,
    /// Datagrams received from the network, including dropped ones.
    pub datagrams_received: u64,
    /// Messages dropped because they had been delivered already.
    pub duplicates: u64,
    /// Datagrams dropped because they did not decode.
    pub malformed: u64,
    /// Datagrams of this context's own sending, heard back through multicast loopback.
    pub own_dropped: u64,
    /// Messages dropped because the application did not take them and the queue was full.
    pub queue_overflow: u64,
    /// Messages never heard: sequence numbers a sender skipped, less those that arrived late.
    pub lost: u64,
    /// Fragmented messages given up (timed out, inconsistent, or over the memory bound).
    pub reassembly_dropped: u64,
    /// Datagrams for a group no channel of this context has (context totals only).
    pub unknown_group: u64,
    /// NACKs this node sent for packets of reliable senders it missed.
    pub nacks_sent: u64,
    /// NACKs received for this node's own packets (reliable contexts).
    pub nacks_received: u64,
    /// Repair datagrams sent: parity, re-sent packets, and the announcements of each burst's end.
    pub repairs_sent: u64,
    /// Bytes of the repair datagrams sent.
    pub repair_bytes_sent: u64,
    /// Parity datagrams received for packets this node still needed or had.
    pub repairs_received: u64,
    /// Packets of reliable senders rebuilt from parity.
    pub packets_recovered: u64,
    /// Packets of reliable senders given up (not repaired in time); their messages count in
    /// `lost`.
    pub packets_lost: u64,
    /// What the channel's keys refused, by reason (every name of `drop_reasons()`): datagrams,
    /// and messages for `replay`.
    pub drops: HashMap<String, u64>,
}

impl From<sixcast::Stats> for Stats {
    fn from(stats: sixcast::Stats) -> Self {
        Self {
            messages_sent: stats.messages_sent,
            bytes_sent: stats.bytes_sent,
            datagrams_sent: stats.datagrams_sent,
            messages_received: stats.messages_received,
            bytes_received: stats.bytes_received,
            datagrams_received: stats.datagrams_received,
            duplicates: stats.duplicates,
            malformed: stats.malformed,
            own_dropped: stats.own_dropped,
            queue_overflow: stats.queue_overflow,
            lost: stats.lost,
            reassembly_dropped: stats.reassembly_dropped,
            unknown_group: stats.unknown_group,
            nacks_sent: stats.nacks_sent,
            nacks_received: stats.nacks_received,
            repairs_sent: stats.repairs_sent,
            repair_bytes_sent: stats.repair_bytes_sent,
            repairs_received: stats.repairs_received,
            packets_recovered: stats.packets_recovered,
            packets_lost: stats.packets_lost,
            drops: stats
                .drops
                .iter()
                .map(|(reason, count)| (reason.name().to_owned(), count))
                .collect(),
        }
    }
}

/// What a channel knows of one sender (`Channel.sender_losses`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SenderLoss {
    /// The sender's node id, 16 hex digits.
    pub sender: String,
    /// The highest sequence number of it delivered or given up; null when none was.
    pub highest_seq: Option<u64>,
    /// Its messages never heard: its share of `Stats.lost`, counted the same way.
    pub lost: u64,
}

impl From<sixcast::SenderLoss> for SenderLoss {
    fn from(loss: sixcast::SenderLoss) -> Self {
        Self {
            sender: loss.sender.to_string(),
            highest_seq: loss.highest_seq,
            lost: loss.lost,
        }
    }
}

/// A context: one socket, one node id, any number of channels. Thread-safe.
///
/// The context stays open until `close` (`shutdown()` in Kotlin, where `close()`
/// only releases the handle) or until every handle to it and its channels is released.
#[derive(Debug, uniffi::Object)]
pub struct Context {
    inner: sixcast::Context,
}

#[uniffi::export]
impl Context {
    /// Opens a context: validates `config`, binds the UDP port and starts the background
    /// threads. Fails with `InvalidConfig`/`InvalidAddress` for a bad configuration and with
    /// `UnknownInterface` when a named interface, or any usable one, is missing.
    #[uniffi::constructor]
    pub fn new(config: Config) -> Result<Self> {
        let config = sixcast::Config::try_from(&config)?;
        Ok(Self {
            inner: sixcast::Context::new(config)?,
        })
    }

    /// The channel called `name`, created on first use; the same name gives the same channel.
    /// Fails with `InvalidName` for a name over 4096 bytes and `Closed` after `close`.
    pub fn channel(&self, name: String) -> Result<Arc<Channel>> {
        Ok(Arc::new(Channel {
            inner: self.inner.channel(name)?,
        }))
    }

    /// Sends what is still packed, leaves every group and stops the background threads. Blocked
    /// receives fail with `Closed`, and so do later calls. Closing twice is harmless.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// This context's node id (16 hex digits), carried in every datagram it sends.
    pub fn node_id(&self) -> String {
        self.inner.node_id().to_string()
    }

    /// The UDP port the context is bound to.
    pub fn port(&self) -> u16 {
        self.inner.port()
    }

    /// The names of the interfaces the context joins and sends on.
    pub fn interfaces(&self) -> Vec<String> {
        self.inner.interfaces()
    }

    /// Counters summed over every channel, plus datagrams no channel claimed.
    pub fn stats(&self) -> Stats {
        self.inner.stats().into()
    }

    /// How the context reaches the multicast core through Stratum 0 (the latest probe, the
    /// relay in use, the offers, the last error); null when the config has no `stratum0`.
    pub fn reachability(&self) -> Option<Reachability> {
        self.inner.reachability().map(Reachability::from)
    }

    /// The next event if one is waiting, else null. Fails with `Closed` once the context is
    /// closed and no event is left.
    pub fn try_event(&self) -> Result<Option<Event>> {
        Ok(self.inner.try_event()?.map(Event::from))
    }

    /// Waits for the next event, at most `timeout_ms` milliseconds (null: no limit). Blocks the
    /// calling thread (events are rare); fails with `Timeout`, or `Closed` once the context is
    /// closed and no event is left.
    pub fn next_event(&self, timeout_ms: Option<u64>) -> Result<Event> {
        let timeout = timeout_ms.map_or(Duration::MAX, Duration::from_millis);
        Ok(self.inner.event_timeout(timeout)?.into())
    }
}

/// The latest probe of native reachability through Stratum 0.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ProbeReport {
    /// The Stratum 0 asked, `[address]:port`.
    pub stratum0: String,
    /// Whether Stratum 0 answered at all.
    pub answered: bool,
    /// Round trip of the first answered probe, in milliseconds; null when none was answered.
    pub rtt_ms: Option<f64>,
    /// Whether the core's multicast reaches this node.
    pub native_down: bool,
    /// Whether this node's multicast reaches the core.
    pub native_up: bool,
    /// This node's address and port as Stratum 0 saw them.
    pub observed: Option<String>,
}

/// A relay's offer to carry this context's channels.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RelayOffer {
    /// Where to open the tunnel, `[address]:port`.
    pub address: String,
    /// From the relay request to the offer's arrival, in milliseconds.
    pub rtt_ms: f64,
    /// Share of the relay's capacity in use, in per mille.
    pub load: u16,
    /// Whether the offer comes from an SSM repeater (its traffic arrives as source-specific
    /// multicast from its address rather than down a tunnel).
    pub repeater: bool,
}

/// How a context reaches the multicast core: the latest probe, the relay in use and the offers.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reachability {
    /// The latest probe, once one has completed.
    pub probe: Option<ProbeReport>,
    /// The relay whose tunnel carries the channels, `[address]:port`; null when none does.
    pub relay: Option<String>,
    /// The relays that offered at the last request, best first.
    pub offers: Vec<RelayOffer>,
    /// Why the last attempt to reach the core failed, if it did.
    pub last_error: Option<String>,
    /// The segment's Stratum 1 gateway that carries the channels, `[address]:port`; null when
    /// none does.
    pub gateway: Option<String>,
    /// Groups of the channels this context serves as its segment's gateway.
    pub serving: Vec<String>,
    /// The Stratum 0 of the latest attempt, `[address]:port` (configured, found in DNS, or the
    /// embedded RP); null until one was found.
    pub stratum0: Option<String>,
    /// Relays refused because they could not prove a pinned or vouched identity (only counts
    /// when `relay_keys` or `relay_issuers` are configured).
    pub rejected_relays: u64,
    /// Datagrams sent before the path to the core was known (or while no tunnel carried them)
    /// whose copy for the tunnel was dropped to stay within 1 MiB: they went out natively only,
    /// which may not have reached the core.
    pub held_dropped: u64,
}

impl From<sixcast::Reachability> for Reachability {
    fn from(reachability: sixcast::Reachability) -> Self {
        Self {
            probe: reachability.probe.map(|probe| ProbeReport {
                stratum0: probe.stratum0.to_string(),
                answered: probe.answered,
                rtt_ms: probe.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
                native_down: probe.native_down,
                native_up: probe.native_up,
                observed: probe.observed.map(|observed| observed.to_string()),
            }),
            relay: reachability.relay.map(|relay| relay.to_string()),
            offers: reachability
                .offers
                .into_iter()
                .map(|offer| RelayOffer {
                    address: offer.address.to_string(),
                    rtt_ms: offer.rtt.as_secs_f64() * 1000.0,
                    load: offer.load,
                    repeater: offer.repeater,
                })
                .collect(),
            last_error: reachability.last_error,
            gateway: reachability.gateway.map(|gateway| gateway.to_string()),
            serving: reachability
                .serving
                .iter()
                .map(ToString::to_string)
                .collect(),
            stratum0: reachability.stratum0.map(|stratum0| stratum0.to_string()),
            rejected_relays: reachability.rejected_relays,
            held_dropped: reachability.held_dropped,
        }
    }
}

/// A named channel of a `Context`. Thread-safe; handles to the same name share one queue.
#[derive(Debug, uniffi::Object)]
pub struct Channel {
    pub(crate) inner: sixcast::Channel,
}

#[uniffi::export]
impl Channel {
    /// The channel's name.
    pub fn name(&self) -> String {
        // Channels are created from strings here, so the bytes are always UTF-8.
        String::from_utf8_lossy(self.inner.name()).into_owned()
    }

    /// The group this channel's traffic is sent to.
    pub fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The group relays re-send this channel's traffic to; null for the librecast profile.
    pub fn relayed_group(&self) -> Option<String> {
        self.inner.relayed_group().map(|group| group.to_string())
    }

    /// Starts receiving the channel from any source on every configured interface.
    pub fn join(&self) -> Result<()> {
        Ok(self.inner.join()?)
    }

    /// Starts receiving the channel from `source` (a unicast IPv6 address) only. Several
    /// sources may be joined one by one.
    pub fn join_source(&self, source: String) -> Result<()> {
        Ok(self.inner.join_source(parse_address(&source)?)?)
    }

    /// Stops receiving the channel (any-source and source-specific memberships alike).
    pub fn leave(&self) -> Result<()> {
        Ok(self.inner.leave()?)
    }

    /// Queues `data` for the channel. Small messages are packed together (unless `packing` is
    /// off) and large ones fragmented; datagrams leave in batches within the configured linger
    /// time or at `flush`, and after a linger without sending the next complete one leaves at
    /// once. Fails with `MessageTooLarge` above the configured maximum message size.
    ///
    /// Blocks while the send rate (`send_rate_messages`, `send_rate_bytes`) or a reliable
    /// channel's flow window holds the message back; see `send_timeout` and `try_send`.
    pub fn send(&self, data: Vec<u8>) -> Result<()> {
        Ok(self.inner.send(&data)?)
    }

    /// As `send`, but waits at most `timeout_ms` milliseconds for the send rate's turn and a
    /// reliable channel's flow window; fails with `Timeout`, queueing nothing of the message,
    /// if either comes later (ZeroMQ's send timeout).
    pub fn send_timeout(&self, data: Vec<u8>, timeout_ms: u64) -> Result<()> {
        Ok(self
            .inner
            .send_timeout(&data, Duration::from_millis(timeout_ms))?)
    }

    /// As `send`, but never waits: fails with `Timeout`, queueing nothing, when the send rate
    /// or a reliable channel's flow window would make `send` wait (ZeroMQ's `DONTWAIT`).
    pub fn try_send(&self, data: Vec<u8>) -> Result<()> {
        Ok(self.inner.try_send(&data)?)
    }

    /// Sends what waits (the partly filled datagram, a batch) now.
    pub fn flush(&self) -> Result<()> {
        Ok(self.inner.flush()?)
    }

    /// Waits for the next message, at most `timeout_ms` milliseconds (null: no limit). Blocks
    /// the calling thread; fails with `Timeout`, or `Closed` when the context closes.
    pub fn recv(&self, timeout_ms: Option<u64>) -> Result<Message> {
        let message = match timeout_ms {
            None => self.inner.recv(),
            Some(ms) => self.inner.recv_timeout(Duration::from_millis(ms)),
        };
        Ok(message?.into())
    }

    /// The next message if one is waiting, else null. Fails with `Closed` once the context is
    /// closed and the queue is empty.
    pub fn try_recv(&self) -> Result<Option<Message>> {
        Ok(self.inner.try_recv()?.map(Message::from))
    }

    /// This channel's counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats().into()
    }

    /// Loss per sender: every sender this channel tracks now (up to 4,096, the least recently
    /// heard forgotten first), sorted by node id, with its messages never heard.
    pub fn sender_losses(&self) -> Vec<SenderLoss> {
        self.inner
            .sender_losses()
            .into_iter()
            .map(SenderLoss::from)
            .collect()
    }

    /// Seals everything sent from now on with `key`, and accepts only datagrams sealed with it
    /// or a key added with `add_key`. Receivers without the key deliver nothing and count the
    /// drops in `stats().drops`.
    pub fn set_key(&self, key: Arc<ChannelKey>) -> Result<()> {
        Ok(self.inner.set_key(&key.inner)?)
    }

    /// Accepts datagrams sealed with `key` too, without sending with it: for rotating keys.
    pub fn add_key(&self, key: Arc<ChannelKey>) -> Result<()> {
        Ok(self.inner.add_key(&key.inner)?)
    }

    /// Stops accepting datagrams sealed with the key of id `id`; returns whether the channel
    /// held it. Removing the send key makes the channel send plain datagrams again.
    pub fn remove_key(&self, id: u32) -> Result<bool> {
        Ok(self.inner.remove_key(KeyId(id))?)
    }

    /// Signs everything sent from now on with `key`.
    pub fn sign_with(&self, key: Arc<SigningKey>) -> Result<()> {
        Ok(self.inner.sign_with(key.inner.clone())?)
    }

    /// Accepts datagrams signed with `key`. From the first trusted key on, the channel accepts
    /// only datagrams signed by a trusted key.
    pub fn trust(&self, key: Arc<PublicKey>) -> Result<()> {
        Ok(self.inner.trust(key.inner)?)
    }

    /// Presents `token` with every signed datagram, so that receivers trusting its issuer
    /// accept this channel's signing key until the token expires. Fails with `InvalidConfig`
    /// unless the token is for the key of `sign_with` and this channel.
    pub fn present(&self, token: Arc<Token>) -> Result<()> {
        Ok(self.inner.present(token.inner)?)
    }

    /// Accepts datagrams signed by any key that presents an unexpired token of `issuer` for
    /// this channel. Like `trust`, makes the channel accept only signed datagrams.
    pub fn trust_issuer(&self, issuer: Arc<PublicKey>) -> Result<()> {
        Ok(self.inner.trust_issuer(issuer.inner)?)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Channel {
    /// `recv` without blocking a thread: a Kotlin `suspend` function, a Swift `async` one. The
    /// waiting task is parked in the channel's queue and woken when a message arrives, so 1,000
    /// pending receives cost no thread.
    ///
    /// Cancelling it (cancelling the coroutine or task) takes no message: a message is taken
    /// only when the receive completes.
    pub async fn recv_async(&self, timeout_ms: Option<u64>) -> Result<Message> {
        let received = self.inner.recv_async();
        let message = match timeout_ms {
            None => received.await,
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), received).await {
                Ok(message) => message,
                // The core's Timeout error, unless a message arrived just now.
                Err(_elapsed) => self.inner.recv_timeout(Duration::ZERO),
            },
        };
        Ok(message?.into())
    }
}
