package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Channel is a named channel of a Context. Safe for concurrent use; channels of the same name
// share one queue. Close it when done.
type Channel struct {
	mu  sync.RWMutex
	ptr *C.SixcastChannel
	// turn lets one Recv at a time wait on the readiness descriptor, so that a receiver that
	// takes one message never leaves another asleep beside a full queue.
	turn chan struct{}
	// ready is a duplicate of the channel's readiness descriptor, which the Go runtime's
	// poller watches; made on the first Recv.
	ready *os.File
}

func newChannel(ptr *C.SixcastChannel) *Channel {
	channel := &Channel{ptr: ptr, turn: make(chan struct{}, 1)}
	runtime.SetFinalizer(channel, (*Channel).Close)
	return channel
}

// Close releases the channel's handle; a Recv waiting on it returns ErrClosed. The channel's
// memberships and queue belong to the context and stay until it closes. Closing twice is
// harmless.
func (c *Channel) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return nil
	}
	if c.ready != nil {
		c.ready.Close()
	}
	C.sixcast_channel_free(c.ptr)
	c.ptr = nil
	runtime.SetFinalizer(c, nil)
	return nil
}

// call runs f with the channel's handle and a place for the error, or fails with ErrClosed
// after Close.
func (c *Channel) call(f func(*C.SixcastChannel, **C.SixcastError) uint32) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return &Error{Kind: ErrClosed, Message: "the channel is closed"}
	}
	var cError *C.SixcastError
	return check(f(c.ptr, &cError), cError)
}

// text reads one of the channel's strings; "" after Close.
func (c *Channel) text(f func(*C.SixcastChannel) *C.char) string {
	var value string
	_ = c.call(func(ptr *C.SixcastChannel, _ **C.SixcastError) uint32 {
		value = takeString(f(ptr))
		return C.SIXCAST_STATUS_OK
	})
	return value
}

// Name is the channel's name.
func (c *Channel) Name() string {
	return c.text(func(ptr *C.SixcastChannel) *C.char { return C.sixcast_channel_name(ptr) })
}

// Group is the group the channel's traffic is sent to.
func (c *Channel) Group() string {
	return c.text(func(ptr *C.SixcastChannel) *C.char { return C.sixcast_channel_group(ptr) })
}

// RelayedGroup is the group relays re-send the channel's traffic to; "" for the librecast
// profile, which has none.
func (c *Channel) RelayedGroup() string {
	return c.text(func(ptr *C.SixcastChannel) *C.char { return C.sixcast_channel_relayed_group(ptr) })
}

// Join starts receiving the channel from any source on every configured interface.
func (c *Channel) Join() error {
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_join(ptr, e)
	})
}

// JoinSource starts receiving the channel from source (a unicast IPv6 address) only.
func (c *Channel) JoinSource(source string) error {
	if err := checkText(source); err != nil {
		return err
	}
	text := cString(source)
	defer text.free()
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_join_source(ptr, text.ptr, e)
	})
}

// Leave stops receiving the channel.
func (c *Channel) Leave() error {
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_leave(ptr, e)
	})
}

// Send queues data for the channel (copied before it returns). Small messages are packed
// together and large ones fragmented; datagrams leave within the configured linger time or at
// Flush. It fails with ErrMessageTooLarge above the configured maximum message size. It blocks
// while the send rate or a reliable channel's flow window holds the message back; see
// SendTimeout and TrySend.
func (c *Channel) Send(data []byte) error {
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		bytes, length := cBytes(data)
		status := C.sixcast_channel_send(ptr, bytes, length, e)
		runtime.KeepAlive(data)
		return status
	})
}

// SendTimeout is Send, but waits at most timeout (to the millisecond, rounded down) for the
// send rate's turn (send_rate_messages, send_rate_bytes) and for a reliable channel's flow
// window, holding an OS thread meanwhile. If either comes later it fails with ErrTimeout and
// queues nothing of the message (ZeroMQ's send timeout); a timeout of zero or less never waits,
// as TrySend.
func (c *Channel) SendTimeout(data []byte, timeout time.Duration) error {
	ms := max(timeout.Milliseconds(), 0)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		bytes, length := cBytes(data)
		status := C.sixcast_channel_send_timeout(ptr, bytes, length, C.int64_t(ms), e)
		runtime.KeepAlive(data)
		return status
	})
}

// TrySend is Send, but never waits: it fails with ErrTimeout, queueing nothing, when the send
// rate or a reliable channel's flow window would make Send wait (ZeroMQ's DONTWAIT).
func (c *Channel) TrySend(data []byte) error {
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		bytes, length := cBytes(data)
		status := C.sixcast_channel_try_send(ptr, bytes, length, e)
		runtime.KeepAlive(data)
		return status
	})
}

// Flush sends what waits (the partly filled datagram, a batch) now.
func (c *Channel) Flush() error {
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_flush(ptr, e)
	})
}

// TryRecv takes the next message if one waits, else returns nil. It fails with ErrClosed once
// the context is closed and the queue is empty.
func (c *Channel) TryRecv() (*Message, error) {
	var message *C.SixcastMessage
	err := c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_try_recv(ptr, &message, e)
	})
	if err != nil || message == nil {
		return nil, err
	}
	return takeMessage(message), nil
}

// Recv waits for the next message until ctx is done, and then returns ctx.Err(). The wait
// parks the goroutine on the runtime's poller (the channel's readiness descriptor), not on an
// OS thread. It fails with ErrClosed once the context is closed and the queue is empty, or when
// the channel is closed.
func (c *Channel) Recv(ctx context.Context) (*Message, error) {
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.turn }()
	ready, err := c.readiness()
	if err != nil {
		return nil, err
	}
	raw, err := ready.SyscallConn()
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if err := ready.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		ready.SetReadDeadline(time.Now())
		close(cancelled)
	})
	// The next Recv sets its own deadline: this one's wake-up must be over by then.
	defer func() {
		if !stop() {
			<-cancelled
		}
	}()
	var message *Message
	var recvErr error
	// Each time the descriptor polls readable, take a message; finding none re-arms it.
	err = raw.Read(func(uintptr) bool {
		message, recvErr = c.TryRecv()
		return message != nil || recvErr != nil
	})
	switch {
	case message != nil || recvErr != nil:
		return message, recvErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		// ctx was cancelled, or its deadline passed a moment before ctx noticed.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, context.DeadlineExceeded
	case c.closed():
		// Close closed the descriptor under the wait (the poller reports "use of closed file").
		return nil, &Error{Kind: ErrClosed, Message: "the channel is closed"}
	default:
		return nil, err
	}
}

func (c *Channel) closed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ptr == nil
}

// Messages yields each message as it arrives until ctx is done or an error, which it yields
// last: for message, err := range channel.Messages(ctx).
func (c *Channel) Messages(ctx context.Context) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for {
			message, err := c.Recv(ctx)
			if !yield(message, err) || err != nil {
				return
			}
		}
	}
}

// readiness returns the channel's readiness descriptor, made on first use.
func (c *Channel) readiness() (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ptr == nil {
		return nil, &Error{Kind: ErrClosed, Message: "the channel is closed"}
	}
	if c.ready != nil {
		return c.ready, nil
	}
	var fd C.int32_t
	var cError *C.SixcastError
	if err := check(C.sixcast_channel_readiness_fd(c.ptr, &fd, &cError), cError); err != nil {
		return nil, err
	}
	// The library owns its descriptor; the runtime's poller gets a duplicate of its own.
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return nil, &Error{Kind: ErrIo, Message: "cannot duplicate the readiness descriptor: " + errno.Error()}
	}
	c.ready = os.NewFile(dup, "sixcast-readiness")
	return c.ready, nil
}

// Stats are the channel's counters.
func (c *Channel) Stats() (Stats, error) {
	var cStats C.SixcastStats
	err := c.call(func(ptr *C.SixcastChannel, _ **C.SixcastError) uint32 {
		return C.sixcast_channel_stats(ptr, &cStats)
	})
	return statsOf(&cStats), err
}

// SenderLoss is what a channel knows of one sender (Channel.SenderLosses).
type SenderLoss struct {
	// Sender is the sender's node id, 16 hex digits.
	Sender string `json:"sender"`
	// HighestSeq is the highest sequence number of it delivered or given up; nil when none was.
	HighestSeq *uint64 `json:"highest_seq"`
	// Lost is its messages never heard: its share of Stats.Lost, counted the same way.
	Lost uint64 `json:"lost"`
}

// SenderLosses is the loss per sender: every sender the channel tracks now (up to 4,096, the
// least recently heard forgotten first), sorted by node id, with its messages never heard.
func (c *Channel) SenderLosses() ([]SenderLoss, error) {
	var text *C.char
	err := c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_sender_losses_json(ptr, &text, e)
	})
	if err != nil {
		return nil, err
	}
	losses := []SenderLoss{}
	err = json.Unmarshal([]byte(takeString(text)), &losses)
	return losses, err
}
