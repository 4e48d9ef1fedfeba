package sixcast_test

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sixcast/sixcast/bindings-go"
)

// manifestVectors is the decode section of tests/conformance/vectors/manifest.json: a valid
// case has Sender, Number and Digests, an invalid one Reason.
type manifestVectors struct {
	Decode []struct {
		Name     string   `json:"name"`
		Why      string   `json:"why"`
		Manifest string   `json:"manifest"`
		Sender   string   `json:"sender"`
		Number   uint64   `json:"number"`
		Digests  []string `json:"digests"`
		Reason   string   `json:"reason"`
	} `json:"decode"`
}

// digestsAsHex is the digests of a decoded manifest as the vectors write them.
func digestsAsHex(m *sixcast.Manifest) []string {
	digests := []string{}
	for _, digest := range m.Digests {
		digests = append(digests, hex.EncodeToString(digest))
	}
	return digests
}

func TestManifestVectorsHaveValidAndInvalidCases(t *testing.T) {
	var vectors manifestVectors
	loadVectors(t, "manifest.json", &vectors)
	valid, invalid := 0, 0
	for _, c := range vectors.Decode {
		if c.Reason == "" {
			valid++
		} else {
			invalid++
		}
	}
	if valid == 0 || invalid == 0 {
		t.Errorf("%d valid, %d invalid cases", valid, invalid)
	}
}

func TestManifestDecodeVectors(t *testing.T) {
	var vectors manifestVectors
	loadVectors(t, "manifest.json", &vectors)
	if len(vectors.Decode) == 0 {
		t.Fatal("no decode cases")
	}
	for _, c := range vectors.Decode {
		t.Run(c.Name, func(t *testing.T) {
			decoded, err := sixcast.DecodeManifest(mustHex(t, c.Manifest))
			if c.Reason != "" {
				if !errors.Is(err, sixcast.ErrMalformed) {
					t.Fatalf("%s: %v, %+v; expected Malformed", c.Why, err, decoded)
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
			if decoded.Sender != c.Sender || decoded.Number != c.Number ||
				!reflect.DeepEqual(digestsAsHex(decoded), c.Digests) {
				t.Errorf("%s: sender %s, number %d, digests %v; expected %s, %d, %v", c.Why,
					decoded.Sender, decoded.Number, digestsAsHex(decoded), c.Sender, c.Number, c.Digests)
			}
		})
	}
}

func TestDecodeManifestRefusesDatagramsOfOtherTypes(t *testing.T) {
	var vectors manifestVectors
	loadVectors(t, "manifest.json", &vectors)
	for _, c := range vectors.Decode {
		if c.Reason != "" {
			continue
		}
		// The same bytes with the type of a batch of messages (1).
		datagram := mustHex(t, c.Manifest)
		datagram[3] = 1
		_, err := sixcast.DecodeManifest(datagram)
		if !errors.Is(err, sixcast.ErrMalformed) || !strings.Contains(err.Error(), "(unknown_type)") {
			t.Errorf("a batch of messages: %v", err)
		}
		if _, err := sixcast.DecodeManifest(nil); !errors.Is(err, sixcast.ErrMalformed) {
			t.Errorf("no bytes: %v", err)
		}
		return
	}
	t.Fatal("no valid case")
}
