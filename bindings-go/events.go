package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Event is something that happened to a context. Kind says which, and which fields are set:
//
//   - "path_changed": Path ("native", "relay", "repeater", "gateway" or "unreachable") and Via
//     (the relay, repeater or gateway, "[address]:port");
//   - "relay_failover": From, and To ("" when no spare took over);
//   - "gateway_role": Serving, the groups of the channels this context serves for its segment;
//   - "messages_lost": Group, Sender and Count, a sender's messages never heard.
type Event struct {
	Kind    string   `json:"kind"`
	Path    string   `json:"path"`
	Via     string   `json:"via"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Serving []string `json:"serving"`
	Group   string   `json:"group"`
	Sender  string   `json:"sender"`
	Count   uint64   `json:"count"`
}

// eventSlice bounds each wait in the C library, so that NextEvent notices ctx within it.
const eventSlice = 100 * time.Millisecond

// NextEvent waits for the context's next event until ctx is done, and then returns ctx.Err().
// Events are rare: the wait holds an OS thread, in slices of 100 ms. It fails with ErrClosed
// once the context is closed and no event is left.
func (c *Context) NextEvent(ctx context.Context) (*Event, error) {
	for {
		slice := eventSlice
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < slice {
			slice = max(time.Until(deadline), 0)
		}
		event, err := c.event(func(ptr *C.SixcastContext, text **C.char, e **C.SixcastError) uint32 {
			return C.sixcast_context_next_event(ptr, C.int64_t(slice.Milliseconds()), text, e)
		})
		if !errors.Is(err, ErrTimeout) {
			return event, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// TryEvent takes the context's next event if one waits, else returns nil.
func (c *Context) TryEvent() (*Event, error) {
	return c.event(func(ptr *C.SixcastContext, text **C.char, e **C.SixcastError) uint32 {
		return C.sixcast_context_try_event(ptr, text, e)
	})
}

// event runs one of the C library's event calls and decodes what it returned.
func (c *Context) event(call func(*C.SixcastContext, **C.char, **C.SixcastError) uint32) (*Event, error) {
	var event *Event
	err := c.use(func(ptr *C.SixcastContext) error {
		var text *C.char
		var cError *C.SixcastError
		if err := check(call(ptr, &text, &cError), cError); err != nil || text == nil {
			return err
		}
		event = &Event{}
		return json.Unmarshal([]byte(takeString(text)), event)
	})
	return event, err
}
