//! The records a C program reads directly: [`SixcastMessage`] and [`SixcastStats`].

use std::ffi::{CString, c_char};

use sixcast::crypto::DropReason;

/// How many reasons `SixcastStats.drops` counts; `sixcast_drop_reason_name` names each.
pub const SIXCAST_DROP_REASONS: usize = 9;

/// A received message. Its pointers stay valid until `sixcast_message_free`; the strings are
/// NUL-terminated UTF-8.
#[repr(C)]
pub struct SixcastMessage {
    /// The application bytes (NULL when `payload_len` is 0).
    pub payload: *const u8,
    /// How many bytes `payload` holds.
    pub payload_len: usize,
    /// The address the datagram came from, without a scope id (see `interface`).
    pub source: *const c_char,
    /// The UDP port the datagram came from.
    pub source_port: u16,
    /// The group the datagram was sent to: the channel's group, or its relayed form.
    pub group: *const c_char,
    /// Index of the interface the datagram arrived on.
    pub interface: u32,
    /// Name of that interface.
    pub interface_name: *const c_char,
    /// The sending context's node id, 16 hex digits (all zero for the librecast profile).
    pub sender: *const c_char,
    /// The sender's sequence number of this message on this channel.
    pub seq: u64,
    /// Whether a relay or gateway re-sent this message.
    pub relayed: bool,
    /// How the message arrived: `"native"`, `"relay"` or `"gateway"`.
    pub path: *const c_char,
}

/// A message and the memory its pointers point into. `record` comes first, so a pointer to
/// the box is a pointer to the record.
#[repr(C)]
pub(crate) struct OwnedMessage {
    record: SixcastMessage,
    _payload: Vec<u8>,
    _strings: [CString; 5],
}

impl OwnedMessage {
    /// A message for C, leaked until `sixcast_message_free`.
    pub(crate) fn into_raw(message: sixcast::Message) -> *mut SixcastMessage {
        let strings = [
            crate::text::kept(message.source.ip().to_string()),
            crate::text::kept(message.group.to_string()),
            crate::text::kept(&*message.interface_name),
            crate::text::kept(message.sender.to_string()),
            crate::text::kept(message.path.name()),
        ];
        let payload = message.payload;
        let record = SixcastMessage {
            payload: if payload.is_empty() {
                std::ptr::null()
            } else {
                payload.as_ptr()
            },
            payload_len: payload.len(),
            source: strings[0].as_ptr(),
            source_port: message.source.port(),
            group: strings[1].as_ptr(),
            interface: message.interface,
            interface_name: strings[2].as_ptr(),
            sender: strings[3].as_ptr(),
            seq: message.seq,
            relayed: message.relayed,
            path: strings[4].as_ptr(),
        };
        // Moving the Vec and the CStrings keeps their heap memory where the pointers point.
        let owned = Box::new(Self {
            record,
            _payload: payload,
            _strings: strings,
        });
        Box::into_raw(owned).cast()
    }
}

/// Frees a message. NULL is ignored.
///
/// # Safety
/// `message` is NULL or a message this library returned, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_message_free(message: *mut SixcastMessage) {
    if !message.is_null() {
        // SAFETY: every message handed out is the first field of an `OwnedMessage` box.
        drop(unsafe { Box::from_raw(message.cast::<OwnedMessage>()) });
    }
}

/// Counters of a channel, or of a whole context.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SixcastStats {
    /// Messages accepted by send.
    pub messages_sent: u64,
    /// Payload bytes accepted by send.
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
    /// What the channel's keys refused, by reason: index `i` is `sixcast_drop_reason_name(i)`.
    pub drops: [u64; SIXCAST_DROP_REASONS],
}

impl From<sixcast::Stats> for SixcastStats {
    fn from(stats: sixcast::Stats) -> Self {
        let mut drops = [0; SIXCAST_DROP_REASONS];
        for (slot, &reason) in drops.iter_mut().zip(DropReason::ALL) {
            *slot = stats.drops.get(reason);
        }
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
            drops,
        }
    }
}

/// The name of drop reason `index` (`"not_sealed"`, `"bad_tag"`, ...), a static string; NULL
/// from `SIXCAST_DROP_REASONS` on.
#[unsafe(no_mangle)]
pub extern "C" fn sixcast_drop_reason_name(index: usize) -> *const c_char {
    DROP_REASON_NAMES
        .get(index)
        .map_or(std::ptr::null(), |name| name.as_ptr())
}

/// NUL-terminated copies of `DropReason::name`, in `DropReason::ALL` order (a test checks).
const DROP_REASON_NAMES: [&std::ffi::CStr; SIXCAST_DROP_REASONS] = [
    c"not_sealed",
    c"no_key",
    c"bad_tag",
    c"not_signed",
    c"untrusted_signer",
    c"bad_signature",
    c"expired",
    c"replay",
    c"unverified",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_names_follow_the_core() {
        assert_eq!(DropReason::ALL.len(), SIXCAST_DROP_REASONS);
        for (name, reason) in DROP_REASON_NAMES.iter().zip(DropReason::ALL) {
            assert_eq!(name.to_str().unwrap(), reason.name());
        }
        assert!(sixcast_drop_reason_name(SIXCAST_DROP_REASONS).is_null());
    }
}
