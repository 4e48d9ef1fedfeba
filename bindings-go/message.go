package sixcast

/*
#include <sixcast.h>
*/
import "C"

import "unsafe"

// Message is a message received on a channel, with where it came from and how it arrived.
type Message struct {
	// Payload holds the application bytes.
	Payload []byte
	// Source is the address the datagram came from, without a scope id (see Interface).
	Source string
	// SourcePort is the UDP port the datagram came from.
	SourcePort uint16
	// Group is the group the datagram was sent to: the channel's group, or its relayed form.
	Group string
	// Interface is the index of the interface the datagram arrived on.
	Interface uint32
	// InterfaceName is that interface's name.
	InterfaceName string
	// Sender is the sending context's node id, 16 hex digits.
	Sender string
	// Seq is the sender's sequence number of this message on this channel.
	Seq uint64
	// Relayed tells whether a relay or gateway re-sent this message.
	Relayed bool
	// Path is how the message arrived: "native", "relay" or "gateway".
	Path string
}

// takeMessage copies a message the library returned and frees it.
func takeMessage(message *C.SixcastMessage) *Message {
	defer C.sixcast_message_free(message)
	return &Message{
		Payload:       C.GoBytes(unsafe.Pointer(message.payload), C.int(message.payload_len)),
		Source:        C.GoString(message.source),
		SourcePort:    uint16(message.source_port),
		Group:         C.GoString(message.group),
		Interface:     uint32(message._interface),
		InterfaceName: C.GoString(message.interface_name),
		Sender:        C.GoString(message.sender),
		Seq:           uint64(message.seq),
		Relayed:       bool(message.relayed),
		Path:          C.GoString(message.path),
	}
}

// Stats are the counters of a channel, or of a whole context.
type Stats struct {
	MessagesSent      uint64 // messages accepted by Send
	BytesSent         uint64 // payload bytes accepted by Send
	DatagramsSent     uint64 // datagrams handed to the kernel (once per interface)
	MessagesReceived  uint64 // messages delivered to the application's queue
	BytesReceived     uint64 // payload bytes delivered to the application's queue
	DatagramsReceived uint64 // datagrams received, including dropped ones
	Duplicates        uint64 // messages dropped because they had been delivered already
	Malformed         uint64 // datagrams dropped because they did not decode
	OwnDropped        uint64 // datagrams of this context's own sending, heard back
	QueueOverflow     uint64 // messages dropped because the queue was full
	Lost              uint64 // messages never heard: sequence numbers a sender skipped
	ReassemblyDropped uint64 // fragmented messages given up
	UnknownGroup      uint64 // datagrams for a group no channel has (context totals only)
	NacksSent         uint64 // NACKs sent for packets of reliable senders this node missed
	NacksReceived     uint64 // NACKs received for this node's own packets (reliable contexts)
	RepairsSent       uint64 // repair datagrams sent: parity, re-sent packets, burst ends
	RepairBytesSent   uint64 // bytes of the repair datagrams sent
	RepairsReceived   uint64 // parity datagrams received for packets still needed or had
	PacketsRecovered  uint64 // packets of reliable senders rebuilt from parity
	PacketsLost       uint64 // packets of reliable senders given up; their messages count in Lost
	// Drops counts what the channel's keys refused, by reason ("not_sealed", "bad_tag", ...).
	Drops map[string]uint64
}

func statsOf(stats *C.SixcastStats) Stats {
	drops := make(map[string]uint64, C.SIXCAST_DROP_REASONS)
	for i := 0; i < C.SIXCAST_DROP_REASONS; i++ {
		drops[C.GoString(C.sixcast_drop_reason_name(C.size_t(i)))] = uint64(stats.drops[i])
	}
	return Stats{
		MessagesSent:      uint64(stats.messages_sent),
		BytesSent:         uint64(stats.bytes_sent),
		DatagramsSent:     uint64(stats.datagrams_sent),
		MessagesReceived:  uint64(stats.messages_received),
		BytesReceived:     uint64(stats.bytes_received),
		DatagramsReceived: uint64(stats.datagrams_received),
		Duplicates:        uint64(stats.duplicates),
		Malformed:         uint64(stats.malformed),
		OwnDropped:        uint64(stats.own_dropped),
		QueueOverflow:     uint64(stats.queue_overflow),
		Lost:              uint64(stats.lost),
		ReassemblyDropped: uint64(stats.reassembly_dropped),
		UnknownGroup:      uint64(stats.unknown_group),
		NacksSent:         uint64(stats.nacks_sent),
		NacksReceived:     uint64(stats.nacks_received),
		RepairsSent:       uint64(stats.repairs_sent),
		RepairBytesSent:   uint64(stats.repair_bytes_sent),
		RepairsReceived:   uint64(stats.repairs_received),
		PacketsRecovered:  uint64(stats.packets_recovered),
		PacketsLost:       uint64(stats.packets_lost),
		Drops:             drops,
	}
}
