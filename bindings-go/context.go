package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"runtime"
	"sync"
)

// Context is one socket, one node id and any number of channels. Close it when done.
type Context struct {
	mu  sync.RWMutex
	ptr *C.SixcastContext
}

// Open opens a context with config (nil: the defaults): it validates the configuration, binds
// the UDP port and starts the background threads. It fails with ErrInvalidConfig or
// ErrInvalidAddress for a bad configuration and ErrUnknownInterface when a named interface, or
// any usable one, is missing.
func Open(config *Config) (*Context, error) {
	var cConfig *C.SixcastConfig
	if config != nil {
		config.mu.Lock()
		defer config.mu.Unlock()
		cConfig = config.ptr
	}
	var ptr *C.SixcastContext
	var cError *C.SixcastError
	if err := check(C.sixcast_context_open(cConfig, &ptr, &cError), cError); err != nil {
		return nil, err
	}
	runtime.KeepAlive(config)
	context := &Context{ptr: ptr}
	// A forgotten context is only released: like the C handle, the context itself stays open
	// while channels of it are in use.
	runtime.SetFinalizer(context, func(context *Context) { C.sixcast_context_free(context.ptr) })
	return context, nil
}

// Close sends what is still packed, leaves every group and stops the background threads;
// blocked receives and later calls fail with ErrClosed. Closing twice is harmless.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr != nil {
		C.sixcast_context_close(c.ptr)
		C.sixcast_context_free(c.ptr)
		c.ptr = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// use runs f with the context's handle, or fails with ErrClosed after Close.
func (c *Context) use(f func(*C.SixcastContext) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return &Error{Kind: ErrClosed, Message: "the context is closed"}
	}
	return f(c.ptr)
}

// Channel returns the channel called name, created on first use; the same name gives the
// same channel and queue. Close the channel when done with it. It fails with ErrInvalidName for
// a name over 4096 bytes and ErrClosed after Close.
func (c *Context) Channel(name string) (*Channel, error) {
	var channel *Channel
	err := c.use(func(ptr *C.SixcastContext) error {
		if err := checkText(name); err != nil {
			return err
		}
		text := cString(name)
		defer text.free()
		var cChannel *C.SixcastChannel
		var cError *C.SixcastError
		if err := check(C.sixcast_context_channel(ptr, text.ptr, &cChannel, &cError), cError); err != nil {
			return err
		}
		channel = newChannel(cChannel)
		return nil
	})
	return channel, err
}

// NodeID is this context's node id, 16 hex digits, carried in every datagram it sends; "" after
// Close.
func (c *Context) NodeID() string {
	var id string
	_ = c.use(func(ptr *C.SixcastContext) error {
		id = takeString(C.sixcast_context_node_id(ptr))
		return nil
	})
	return id
}

// Port is the UDP port the context is bound to; 0 after Close.
func (c *Context) Port() uint16 {
	var port uint16
	_ = c.use(func(ptr *C.SixcastContext) error {
		port = uint16(C.sixcast_context_port(ptr))
		return nil
	})
	return port
}

// Interfaces names the interfaces the context joins and sends on.
func (c *Context) Interfaces() []string {
	var names []string
	_ = c.use(func(ptr *C.SixcastContext) error {
		names = splitList(takeString(C.sixcast_context_interfaces(ptr)))
		return nil
	})
	return names
}

// Stats are the counters summed over every channel, plus datagrams no channel claimed.
func (c *Context) Stats() (Stats, error) {
	var stats Stats
	err := c.use(func(ptr *C.SixcastContext) error {
		var cStats C.SixcastStats
		if err := check(C.sixcast_context_stats(ptr, &cStats), nil); err != nil {
			return err
		}
		stats = statsOf(&cStats)
		return nil
	})
	return stats, err
}
