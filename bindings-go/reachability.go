package sixcast

/*
#include <sixcast.h>
*/
import "C"

import "encoding/json"

// Reachability is how a context reaches the multicast core through Stratum 0: the latest
// probe, the relay in use, the offers and the last error (docs/reachability.md).
type Reachability struct {
	// Stratum0 is the Stratum 0 of the latest attempt, "[address]:port"; "" until one is found.
	Stratum0 string `json:"stratum0"`
	// Probe is the latest probe, once one has completed.
	Probe *ProbeReport `json:"probe"`
	// Relay is the relay whose tunnel carries the channels; "" when none does.
	Relay string `json:"relay"`
	// Offers are the relays that offered at the last request, best first.
	Offers []RelayOffer `json:"offers"`
	// LastError says why the last attempt to reach the core failed, if it did.
	LastError string `json:"last_error"`
	// Gateway is the segment's Stratum 1 gateway that carries the channels; "" when none does.
	Gateway string `json:"gateway"`
	// Serving are the groups of the channels this context serves as its segment's gateway.
	Serving []string `json:"serving"`
	// RejectedRelays counts relays refused for proving no pinned or vouched identity.
	RejectedRelays uint64 `json:"rejected_relays"`
	// HeldDropped counts datagrams sent before the path to the core was known (or while no
	// tunnel carried them) whose copy for the tunnel was dropped to stay within 1 MiB: they went
	// out natively only, which may not have reached the core.
	HeldDropped uint64 `json:"held_dropped"`
}

// ProbeReport is the latest probe of native reachability.
type ProbeReport struct {
	Stratum0   string   `json:"stratum0"`    // the Stratum 0 asked
	Answered   bool     `json:"answered"`    // whether it answered at all
	RTTMillis  *float64 `json:"rtt_ms"`      // round trip of the first answer; nil without one
	NativeDown bool     `json:"native_down"` // whether the core's multicast reaches this node
	NativeUp   bool     `json:"native_up"`   // whether this node's multicast reaches the core
	Observed   string   `json:"observed"`    // this node's address as Stratum 0 saw it
}

// RelayOffer is a relay's offer to carry the context's channels.
type RelayOffer struct {
	Address   string  `json:"address"`  // where to open the tunnel
	RTTMillis float64 `json:"rtt_ms"`   // from the request to the offer
	Load      uint16  `json:"load"`     // share of the relay's capacity in use, per mille
	Repeater  bool    `json:"repeater"` // an SSM repeater rather than a tunnel relay
}

// Reachability reports how the context reaches the core; nil when its configuration names no
// Stratum 0 (nor a domain or an embedded RP to find one).
func (c *Context) Reachability() (*Reachability, error) {
	var report *Reachability
	err := c.use(func(ptr *C.SixcastContext) error {
		var text *C.char
		var cError *C.SixcastError
		if err := check(C.sixcast_context_reachability(ptr, &text, &cError), cError); err != nil || text == nil {
			return err
		}
		report = &Reachability{}
		return json.Unmarshal([]byte(takeString(text)), report)
	})
	return report, err
}
