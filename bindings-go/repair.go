package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"encoding/hex"
	"encoding/json"
	"runtime"
)

// Repair is one decoded datagram of a reliable channel (docs/reliability.md). Type says which,
// and which fields are set:
//
//   - "sequenced", a numbered packet: Sender, Packet and Inner;
//   - "parity", a Reed-Solomon parity symbol over a block of packets: Sender, BlockStart,
//     BlockLen, Index and Symbol;
//   - "nack", a request for repair: From, Target, Heard and Ranges;
//   - "status", a receiver's report of how far it got: From, Target, Group and Position.
//
// Node ids are 16 hex digits.
type Repair struct {
	Type string
	// Sender is the node whose packet this is, or whose packets the parity repairs.
	Sender string
	// Packet is the packet's number among the sender's packets on the channel, from 0.
	Packet uint64
	// Inner is the datagram the packet carries: a whole datagram of the channel, possibly
	// sealed or signed.
	Inner []byte
	// BlockStart is the first packet number of the parity's block.
	BlockStart uint64
	// BlockLen is how many packets the block holds.
	BlockLen uint16
	// Index is which of the block's parity symbols this is, from 0.
	Index uint16
	// Symbol is the parity symbol.
	Symbol []byte
	// From is the receiver asking or reporting.
	From string
	// Target is the sender asked or reported on.
	Target string
	// Heard is how far the receiver asking has heard the sender (exclusive): the highest
	// packet number or block end it has heard of.
	Heard uint64
	// Ranges are the missing packets, in the order sent.
	Ranges []NackRange
	// Group is the channel's multicast group, IPv6 address text.
	Group string
	// Position is the next packet the receiver waits for: it has handed on every one before.
	Position uint64
}

// NackRange is one range of missing packets of a NACK: Count packets from First.
type NackRange struct {
	First uint64
	Count uint32
}

// repairJSON is the C library's JSON form of a Repair: bytes as hex, ranges as pairs.
type repairJSON struct {
	Type       string      `json:"type"`
	Sender     string      `json:"sender"`
	Packet     uint64      `json:"packet"`
	Inner      string      `json:"inner"`
	BlockStart uint64      `json:"block_start"`
	BlockLen   uint16      `json:"block_len"`
	Index      uint16      `json:"index"`
	Symbol     string      `json:"symbol"`
	From       string      `json:"from"`
	Target     string      `json:"target"`
	Heard      uint64      `json:"heard"`
	Ranges     [][2]uint64 `json:"ranges"`
	Group      string      `json:"group"`
	Position   uint64      `json:"position"`
}

// DecodeRepair decodes one received datagram of a reliable channel. It fails with
// ErrMalformed, whose message names the stable reason in parentheses, for example
// "malformed datagram (bad_count): ...", when the bytes are not a valid one.
func DecodeRepair(datagram []byte) (*Repair, error) {
	bytes, length := cBytes(datagram)
	var text *C.char
	var cError *C.SixcastError
	status := C.sixcast_decode_repair(bytes, length, &text, &cError)
	runtime.KeepAlive(datagram)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	var decoded repairJSON
	if err := json.Unmarshal([]byte(takeString(text)), &decoded); err != nil {
		return nil, err
	}
	repair := &Repair{
		Type:       decoded.Type,
		Sender:     decoded.Sender,
		Packet:     decoded.Packet,
		BlockStart: decoded.BlockStart,
		BlockLen:   decoded.BlockLen,
		Index:      decoded.Index,
		From:       decoded.From,
		Target:     decoded.Target,
		Heard:      decoded.Heard,
		Group:      decoded.Group,
		Position:   decoded.Position,
	}
	var err error
	if repair.Inner, err = fromHex(decoded.Inner); err != nil {
		return nil, err
	}
	if repair.Symbol, err = fromHex(decoded.Symbol); err != nil {
		return nil, err
	}
	for _, pair := range decoded.Ranges {
		repair.Ranges = append(repair.Ranges, NackRange{First: pair[0], Count: uint32(pair[1])})
	}
	return repair, nil
}

// fromHex is the bytes of a hex field of the C library's JSON; nil when the field is absent.
func fromHex(text string) ([]byte, error) {
	if text == "" {
		return nil, nil
	}
	return hex.DecodeString(text)
}
