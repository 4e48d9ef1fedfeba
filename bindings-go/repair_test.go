package sixcast_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sixcast/sixcast/bindings-go"
)

// repairVectors is tests/conformance/vectors/repair.json.
type repairVectors struct {
	Decode []struct {
		Name     string          `json:"name"`
		Why      string          `json:"why"`
		Datagram string          `json:"datagram"`
		Decoded  json.RawMessage `json:"decoded"`
		Error    string          `json:"error"`
		Reason   string          `json:"reason"`
	} `json:"decode"`
	Parity []struct {
		Name     string   `json:"name"`
		Sender   string   `json:"sender"`
		BlockLen uint16   `json:"block_len"`
		Packets  []string `json:"packets"`
		Parity   []string `json:"parity"`
	} `json:"parity"`
}

func mustHex(t *testing.T, text string) []byte {
	t.Helper()
	b, err := hex.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repairAsVector is a decoded datagram in the form of the vectors' "decoded" objects: the
// type's fields only, bytes as hex, ranges as [first, count] pairs.
func repairAsVector(r *sixcast.Repair) map[string]any {
	switch r.Type {
	case "sequenced":
		return map[string]any{"type": r.Type, "sender": r.Sender, "packet": r.Packet, "inner": hex.EncodeToString(r.Inner)}
	case "parity":
		return map[string]any{
			"type": r.Type, "sender": r.Sender, "block_start": r.BlockStart, "block_len": r.BlockLen,
			"index": r.Index, "symbol": hex.EncodeToString(r.Symbol),
		}
	case "nack":
		ranges := [][2]uint64{}
		for _, nackRange := range r.Ranges {
			ranges = append(ranges, [2]uint64{nackRange.First, uint64(nackRange.Count)})
		}
		return map[string]any{"type": r.Type, "from": r.From, "target": r.Target, "heard": r.Heard, "ranges": ranges}
	}
	return map[string]any{"type": r.Type, "from": r.From, "target": r.Target, "group": r.Group, "position": r.Position}
}

// sameJSON reports whether got, marshalled, is the JSON value want, field by field; it returns
// both as compact JSON text.
func sameJSON(t *testing.T, got any, want json.RawMessage) (bool, string, string) {
	t.Helper()
	text, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(text, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	wanted, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(a, b), string(text), string(wanted)
}

func TestRepairVectorsHaveEveryTypeAndSomeInvalidCases(t *testing.T) {
	var vectors repairVectors
	loadVectors(t, "repair.json", &vectors)
	types, invalid := map[string]bool{}, 0
	for _, c := range vectors.Decode {
		if c.Decoded == nil {
			invalid++
			continue
		}
		var decoded struct{ Type string }
		if err := json.Unmarshal(c.Decoded, &decoded); err != nil {
			t.Fatal(err)
		}
		types[decoded.Type] = true
	}
	var names []string
	for name := range types {
		names = append(names, name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "nack,parity,sequenced,status" || invalid == 0 {
		t.Errorf("types %v, %d invalid cases", names, invalid)
	}
}

func TestRepairDecodeVectors(t *testing.T) {
	var vectors repairVectors
	loadVectors(t, "repair.json", &vectors)
	if len(vectors.Decode) == 0 {
		t.Fatal("no decode cases")
	}
	for _, c := range vectors.Decode {
		t.Run(c.Name, func(t *testing.T) {
			decoded, err := sixcast.DecodeRepair(mustHex(t, c.Datagram))
			if c.Decoded == nil {
				if !errors.Is(err, kindNamed(t, c.Error)) {
					t.Fatalf("%s: %v, %+v; expected %s", c.Why, err, decoded, c.Error)
				}
				var sixcastErr *sixcast.Error
				if !errors.As(err, &sixcastErr) || !strings.Contains(sixcastErr.Message, "("+c.Reason+")") {
					t.Errorf("%s: %v does not name the reason %s", c.Why, err, c.Reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", c.Why, err)
			}
			if same, got, want := sameJSON(t, repairAsVector(decoded), c.Decoded); !same {
				t.Errorf("%s: %s, expected %s", c.Why, got, want)
			}
		})
	}
}

func TestRepairParityDecodesAsItsBlock(t *testing.T) {
	var vectors repairVectors
	loadVectors(t, "repair.json", &vectors)
	if len(vectors.Parity) == 0 {
		t.Fatal("no parity cases")
	}
	for _, c := range vectors.Parity {
		// A symbol is as long as the longest packet plus its 2-byte length, rounded up to even.
		longest := 0
		for _, packet := range c.Packets {
			longest = max(longest, len(packet)/2)
		}
		symbolLen := (longest + 2 + 1) / 2 * 2
		if len(c.Parity) == 0 {
			t.Errorf("%s: no parity", c.Name)
		}
		for i, datagram := range c.Parity {
			parity, err := sixcast.DecodeRepair(mustHex(t, datagram))
			if err != nil {
				t.Errorf("%s parity %d: %v", c.Name, i, err)
				continue
			}
			if parity.Type != "parity" || parity.Sender != c.Sender || parity.BlockStart != 0 ||
				parity.BlockLen != c.BlockLen || int(parity.Index) != i || len(parity.Symbol) != symbolLen {
				t.Errorf("%s parity %d: %+v; expected sender %s, block 0 of %d, symbol of %d bytes",
					c.Name, i, parity, c.Sender, c.BlockLen, symbolLen)
			}
		}
	}
}

func TestDecodeRepairRefusesDatagramsOfTheOtherLayer(t *testing.T) {
	var vectors repairVectors
	loadVectors(t, "repair.json", &vectors)
	for _, c := range vectors.Decode {
		var decoded struct{ Type, Inner string }
		if c.Decoded == nil || json.Unmarshal(c.Decoded, &decoded) != nil || decoded.Type != "sequenced" {
			continue
		}
		// The numbered packet's inner datagram is a batch of messages.
		_, err := sixcast.DecodeRepair(mustHex(t, decoded.Inner))
		if !errors.Is(err, sixcast.ErrMalformed) || !strings.Contains(err.Error(), "(unknown_type)") {
			t.Errorf("a batch of messages: %v", err)
		}
		if _, err := sixcast.DecodeRepair(nil); !errors.Is(err, sixcast.ErrMalformed) {
			t.Errorf("no bytes: %v", err)
		}
		return
	}
	t.Fatal("no sequenced case")
}
