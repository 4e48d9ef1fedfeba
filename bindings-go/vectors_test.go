package sixcast_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/sixcast/sixcast/bindings-go"
)

func loadVectors(t *testing.T, file string, into any) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "tests", "conformance", "vectors", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(text, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// kinds maps the vectors' "go" column to the sentinel errors.
var kinds = map[string]sixcast.Kind{
	"ErrInvalidName":      sixcast.ErrInvalidName,
	"ErrInvalidConfig":    sixcast.ErrInvalidConfig,
	"ErrInvalidAddress":   sixcast.ErrInvalidAddress,
	"ErrUnknownInterface": sixcast.ErrUnknownInterface,
	"ErrMessageTooLarge":  sixcast.ErrMessageTooLarge,
	"ErrMalformed":        sixcast.ErrMalformed,
	"ErrTimeout":          sixcast.ErrTimeout,
	"ErrClosed":           sixcast.ErrClosed,
	"ErrIo":               sixcast.ErrIo,
	"ErrUnsupported":      sixcast.ErrUnsupported,
}

// nameRepeat is a name of one byte repeated: {"byte_hex": "61", "count": 4097}.
type nameRepeat struct {
	ByteHex string `json:"byte_hex"`
	Count   int    `json:"count"`
}

type nameCase struct {
	NameHex    *string     `json:"name_hex"`
	NameUTF8   *string     `json:"name_utf8"`
	NameRepeat *nameRepeat `json:"name_repeat"`
	Profile    string      `json:"profile"`
	RP         *string     `json:"rp"`
	Scope      string      `json:"scope"`
}

func (c nameCase) name(t *testing.T) []byte {
	switch {
	case c.NameRepeat != nil:
		b, err := hex.DecodeString(c.NameRepeat.ByteHex)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Repeat(b, c.NameRepeat.Count)
	case c.NameHex != nil:
		b, err := hex.DecodeString(*c.NameHex)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case c.NameUTF8 != nil:
		return []byte(*c.NameUTF8)
	}
	return nil
}

func (c nameCase) options() sixcast.AddressOptions {
	options := sixcast.AddressOptions{Profile: c.Profile, Scope: c.Scope}
	if c.RP != nil {
		options.RP = *c.RP
	}
	return options
}

func sameAddress(a, b string) bool {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	return errX == nil && errY == nil && x == y
}

func TestErrorKindsAreTheirOwnSentinels(t *testing.T) {
	var vectors struct {
		Kinds []struct{ Name, Go string }
	}
	loadVectors(t, "errors.json", &vectors)
	if len(vectors.Kinds) != len(kinds) {
		t.Fatalf("%d kinds in the vectors, %d here", len(vectors.Kinds), len(kinds))
	}
	for _, kind := range vectors.Kinds {
		sentinel, ok := kinds[kind.Go]
		if !ok {
			t.Errorf("no sentinel %s", kind.Go)
			continue
		}
		err := sixcast.RaiseErrorKind(kind.Name)
		if !errors.Is(err, sentinel) {
			t.Errorf("%s: %v is not %s", kind.Name, err, kind.Go)
		}
		for name, other := range kinds {
			if name != kind.Go && errors.Is(err, other) {
				t.Errorf("%s is also %s", kind.Name, name)
			}
		}
		var sixcastErr *sixcast.Error
		if !errors.As(err, &sixcastErr) || sixcastErr.Kind != sentinel || sentinel.Error() != kind.Name {
			t.Errorf("%s: errors.As gives %+v", kind.Name, sixcastErr)
		}
		wrapped := fmt.Errorf("while testing: %w", err)
		if !errors.Is(wrapped, sentinel) {
			t.Errorf("%s: a wrapped error loses its kind", kind.Name)
		}
	}
	if err := sixcast.RaiseErrorKind("NoSuchKind"); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("an unknown kind gives %v", err)
	}
}

func TestAddressVectors(t *testing.T) {
	var vectors struct {
		Cases []struct {
			nameCase
			Address        string  `json:"address"`
			RelayedAddress *string `json:"relayed_address"`
			Port           uint16  `json:"port"`
		}
		Invalid []struct {
			nameCase
			Error string `json:"error"`
			Why   string `json:"why"`
		}
	}
	loadVectors(t, "addresses.json", &vectors)
	if len(vectors.Cases) < 100 || len(vectors.Invalid) == 0 {
		t.Fatalf("too few vectors: %d, %d", len(vectors.Cases), len(vectors.Invalid))
	}
	for i, c := range vectors.Cases {
		group, err := sixcast.GroupAddress(c.name(t), c.options())
		if err != nil || !sameAddress(group, c.Address) {
			t.Errorf("case %d: %q, %v; expected %s", i, group, err, c.Address)
			continue
		}
		relayed, err := sixcast.RelayedAddress(group, c.options())
		if c.RelayedAddress == nil {
			if !errors.Is(err, sixcast.ErrUnsupported) {
				t.Errorf("case %d has no relayed form, got %q, %v", i, relayed, err)
			}
		} else if err != nil || !sameAddress(relayed, *c.RelayedAddress) {
			t.Errorf("case %d relayed: %q, %v", i, relayed, err)
		}
		if port, err := sixcast.DefaultPort(c.options()); err != nil || port != c.Port {
			t.Errorf("case %d port: %d, %v", i, port, err)
		}
	}
	for i, c := range vectors.Invalid {
		_, err := sixcast.GroupAddress(c.name(t), c.options())
		if !errors.Is(err, kindNamed(t, c.Error)) {
			t.Errorf("invalid case %d (%s): %v", i, c.Why, err)
		}
	}
}

// kindNamed is the sentinel of the core kind named name ("Timeout").
func kindNamed(t *testing.T, name string) sixcast.Kind {
	kind, ok := kinds["Err"+name]
	if !ok {
		t.Fatalf("no kind %s", name)
	}
	return kind
}

func TestErrorCaseVectors(t *testing.T) {
	var vectors struct {
		Cases []struct {
			nameCase
			Op    string                     `json:"op"`
			Error *string                    `json:"error"`
			Set   map[string]json.RawMessage `json:"set"`
		}
	}
	loadVectors(t, "errors.json", &vectors)
	ran := 0
	for i, c := range vectors.Cases {
		var err error
		switch c.Op {
		case "group_address":
			_, err = sixcast.GroupAddress(c.name(t), c.options())
		case "parse_profile":
			_, err = sixcast.DefaultPort(c.options())
		case "parse_scope":
			_, err = sixcast.GroupAddress([]byte("x"), sixcast.AddressOptions{Scope: c.Scope})
		case "config", "open_context":
			config := configWith(t, c.Set)
			if c.Op == "config" {
				err = config.Validate()
			} else {
				var context *sixcast.Context
				if context, err = sixcast.Open(config); err == nil {
					context.Close()
				}
			}
		case "decode", "pack":
			continue // the datagram codec is for tools and tests; Go has no use for it
		default:
			t.Fatalf("case %d: unknown op %s", i, c.Op)
		}
		ran++
		switch {
		case c.Error == nil && err != nil:
			t.Errorf("case %d (%s) failed: %v", i, c.Op, err)
		case c.Error != nil && !errors.Is(err, kindNamed(t, *c.Error)):
			t.Errorf("case %d (%s): %v, expected %s", i, c.Op, err, *c.Error)
		}
	}
	if ran < 15 {
		t.Errorf("only %d cases ran", ran)
	}
}

// configWith applies a case's "set" object: numbers as decimal text, lists item by item.
func configWith(t *testing.T, settings map[string]json.RawMessage) *sixcast.Config {
	config := sixcast.NewConfig()
	for field, raw := range settings {
		var items []string
		if json.Unmarshal(raw, &items) == nil {
			for _, item := range items {
				if err := config.Add(field, item); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		var number json.Number
		if err := json.Unmarshal(raw, &number); err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		if err := config.Set(field, number.String()); err != nil {
			t.Fatal(err)
		}
	}
	return config
}
