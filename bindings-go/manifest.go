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

// Manifest is one decoded MANIFEST datagram (docs/security.md, section 7): the digests of the
// datagrams one signature covers. The sender is 16 hex digits.
type Manifest struct {
	// Sender is the node that sent the manifest and the datagrams it covers.
	Sender string
	// Number is the sender's count of manifests; a repeated copy has the same number.
	Number uint64
	// Digests are the digests of the covered datagrams (16 bytes each), in the order the
	// datagrams were sent.
	Digests [][]byte
}

// manifestJSON is the C library's JSON form of a Manifest: digests as hex.
type manifestJSON struct {
	Sender  string   `json:"sender"`
	Number  uint64   `json:"number"`
	Digests []string `json:"digests"`
}

// DecodeManifest decodes one plain (opened) MANIFEST datagram. It fails with ErrMalformed,
// whose message names the stable reason in parentheses, for example
// "malformed datagram (bad_count): ...", when the bytes are not a valid one.
func DecodeManifest(datagram []byte) (*Manifest, error) {
	bytes, length := cBytes(datagram)
	var text *C.char
	var cError *C.SixcastError
	status := C.sixcast_decode_manifest(bytes, length, &text, &cError)
	runtime.KeepAlive(datagram)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	var decoded manifestJSON
	if err := json.Unmarshal([]byte(takeString(text)), &decoded); err != nil {
		return nil, err
	}
	manifest := &Manifest{Sender: decoded.Sender, Number: decoded.Number}
	for _, digestHex := range decoded.Digests {
		digest, err := hex.DecodeString(digestHex)
		if err != nil {
			return nil, err
		}
		manifest.Digests = append(manifest.Digests, digest)
	}
	return manifest, nil
}
