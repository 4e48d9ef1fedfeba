package sixcast_test

// Tests that send multicast. run-tests runs them (-run World) inside a host of a throwaway
// network-namespace world, and everything else with -skip World, so they never touch this
// machine's own interfaces.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/sixcast/sixcast/bindings-go"
)

const wait = 5 * time.Second

func inWorld(t *testing.T) {
	if os.Getenv("SIXCAST_WORLD") == "" {
		t.Fatal("world tests run inside a world host: bindings-go/run-tests runs them there")
	}
}

func open(t *testing.T) *sixcast.Context {
	t.Helper()
	config := sixcast.NewConfig()
	if err := config.Set("hop_limit", "1"); err != nil {
		t.Fatal(err)
	}
	context, err := sixcast.Open(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { context.Close() })
	return context
}

func channel(t *testing.T, context *sixcast.Context, name string, join bool) *sixcast.Channel {
	t.Helper()
	channel, err := context.Channel(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { channel.Close() })
	if join {
		if err := channel.Join(); err != nil {
			t.Fatal(err)
		}
	}
	return channel
}

func send(t *testing.T, channel *sixcast.Channel, payloads ...[]byte) {
	t.Helper()
	for _, payload := range payloads {
		if err := channel.Send(payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := channel.Flush(); err != nil {
		t.Fatal(err)
	}
}

func recv(t *testing.T, channel *sixcast.Channel) *sixcast.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	message, err := channel.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return message
}

func TestWorldMessagesArriveWithTheirMetadata(t *testing.T) {
	inWorld(t)
	sender, receiver := open(t), open(t)
	out, in := channel(t, sender, "go-world", false), channel(t, receiver, "go-world", true)
	large := make([]byte, 100_000)
	for i := range large {
		large[i] = byte(i % 251)
	}
	send(t, out, []byte("hello"), nil, large)
	first, empty, big := recv(t, in), recv(t, in), recv(t, in)
	if string(first.Payload) != "hello" || len(empty.Payload) != 0 || !bytes.Equal(big.Payload, large) {
		t.Errorf("payloads %q %d %d", first.Payload, len(empty.Payload), len(big.Payload))
	}
	if first.Sender != sender.NodeID() || first.Group != in.Group() || first.Path != "native" ||
		first.Relayed || first.InterfaceName != "eth0" || first.SourcePort != sender.Port() {
		t.Errorf("metadata %+v", first)
	}
	if !(first.Seq < empty.Seq && empty.Seq < big.Seq) {
		t.Errorf("sequence %d %d %d", first.Seq, empty.Seq, big.Seq)
	}
	stats, err := in.Stats()
	if err != nil || stats.MessagesReceived != 3 || stats.Lost != 0 {
		t.Errorf("stats %+v, %v", stats, err)
	}

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := in.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a deadline gives %v", err)
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancelNow)
	if _, err := in.Recv(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancel gives %v", err)
	}
	if message, err := in.TryRecv(); message != nil || err != nil {
		t.Errorf("nothing waits: %v %v", message, err)
	}
}

func TestWorldReliableSenderCountsItsRepairs(t *testing.T) {
	inWorld(t)
	config := sixcast.NewConfig()
	for field, value := range map[string]string{"hop_limit": "1", "reliable": "true"} {
		if err := config.Set(field, value); err != nil {
			t.Fatal(err)
		}
	}
	sender, err := sixcast.Open(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })
	receiver := open(t)
	out, in := channel(t, sender, "go-reliable", false), channel(t, receiver, "go-reliable", true)
	send(t, out, []byte("numbered"))
	if message := recv(t, in); string(message.Payload) != "numbered" {
		t.Errorf("payload %q", message.Payload)
	}
	// A reliable sender announces the end of each burst with parity of its last block.
	var sent sixcast.Stats
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if sent, err = out.Stats(); err != nil || sent.RepairsSent > 0 {
			break
		}
	}
	if err != nil || sent.RepairsSent == 0 || sent.RepairBytesSent <= sent.RepairsSent {
		t.Errorf("sender stats %+v, %v", sent, err)
	}
	// Nothing is lost through loopback: nothing is asked for or rebuilt.
	if sent.MessagesSent != 1 || sent.NacksReceived != 0 || sent.NacksSent != 0 ||
		sent.RepairsReceived != 0 || sent.PacketsRecovered != 0 || sent.PacketsLost != 0 {
		t.Errorf("sender stats %+v", sent)
	}
	received, err := in.Stats()
	if err != nil || received.MessagesReceived != 1 || received.Lost != 0 || received.NacksSent != 0 ||
		received.PacketsRecovered != 0 || received.PacketsLost != 0 || received.RepairsSent != 0 ||
		received.RepairBytesSent != 0 {
		t.Errorf("receiver stats %+v, %v", received, err)
	}
	if totals, err := sender.Stats(); err != nil || totals.RepairsSent < sent.RepairsSent {
		t.Errorf("context stats %+v, %v", totals, err)
	}
}

func TestWorldReceiversWaitWithoutAThreadEach(t *testing.T) {
	inWorld(t)
	sender, receiver := open(t), open(t)
	out, in := channel(t, sender, "go-many", false), channel(t, receiver, "go-many", true)
	const receivers = 50
	threads := pprof.Lookup("threadcreate").Count()
	var wg sync.WaitGroup
	received := make(chan string, receivers)
	for range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if message, err := in.Recv(ctx); err == nil {
				received <- string(message.Payload)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // every receiver is waiting
	waitingThreads := pprof.Lookup("threadcreate").Count() - threads
	for i := range receivers {
		send(t, out, []byte{byte(i)})
	}
	wg.Wait()
	close(received)
	distinct := map[string]bool{}
	for payload := range received {
		distinct[payload] = true
	}
	if len(distinct) != receivers {
		t.Errorf("%d of %d receivers got a message of their own", len(distinct), receivers)
	}
	if waitingThreads > 10 {
		t.Errorf("%d receivers waiting made %d OS threads", receivers, waitingThreads)
	}
	t.Logf("%d waiting receivers made %d OS threads", receivers, waitingThreads)
}

func TestWorldMessagesIteratesUntilClosed(t *testing.T) {
	inWorld(t)
	sender, receiver := open(t), open(t)
	out, in := channel(t, sender, "go-range", false), channel(t, receiver, "go-range", true)
	send(t, out, []byte("a"), []byte("b"), []byte("c"))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []string
	for message, err := range in.Messages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, string(message.Payload)); len(got) == 3 {
			break
		}
	}
	if len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Errorf("got %q", got)
	}
	time.AfterFunc(100*time.Millisecond, func() { receiver.Close() })
	var last error
	for _, err := range in.Messages(context.Background()) {
		last = err
	}
	if !errors.Is(last, sixcast.ErrClosed) {
		t.Errorf("closing the context ends the iteration with %v", last)
	}
	lone := channel(t, sender, "go-lone", true)
	time.AfterFunc(100*time.Millisecond, func() { lone.Close() })
	if _, err := lone.Recv(context.Background()); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("closing the channel wakes its receiver with %v", err)
	}
	if err := lone.Send([]byte("late")); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("a closed channel sends: %v", err)
	}
}

func TestWorldReachabilityReportsAnUnansweredStratum0(t *testing.T) {
	inWorld(t)
	if report, err := open(t).Reachability(); report != nil || err != nil {
		t.Errorf("no Stratum 0, yet a report: %+v, %v", report, err)
	}
	config := sixcast.NewConfig()
	for field, value := range map[string]string{
		"stratum0": "[fd5c:1::99]:6447", "probe_timeout_ms": "200", "probe_interval_ms": "1000",
	} {
		if err := config.Set(field, value); err != nil {
			t.Fatal(err)
		}
	}
	node, err := sixcast.Open(config)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var report *sixcast.Reachability
	// The first probe times out after 200 ms; give it up to 5 s on a loaded machine.
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if report, err = node.Reachability(); err != nil || report.LastError != "" || report.Probe != nil {
			break
		}
	}
	if err != nil || report == nil || report.Stratum0 != "[fd5c:1::99]:6447" {
		t.Fatalf("report %+v, %v", report, err)
	}
	if !(report.Probe != nil && !report.Probe.Answered) && report.LastError == "" {
		t.Errorf("neither an unanswered probe nor an error: %+v", report)
	}
	if report.Relay != "" || len(report.Offers) != 0 {
		t.Errorf("a relay out of nowhere: %+v", report)
	}
	// The failed attempt is announced as an unreachable core.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		event, err := node.NextEvent(ctx)
		if err != nil {
			t.Fatalf("no path event: %v", err)
		}
		if event.Kind == "path_changed" {
			if event.Path != "unreachable" || event.Via != "" {
				t.Errorf("path event %+v", event)
			}
			break
		}
	}
	quiet := open(t)
	if event, err := quiet.TryEvent(); event != nil || err != nil {
		t.Errorf("an event out of nowhere: %+v, %v", event, err)
	}
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if _, err := quiet.NextEvent(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a deadline gives %v", err)
	}
}

func TestWorldSignedChannelsDropUntrustedSenders(t *testing.T) {
	inWorld(t)
	sender, receiver := open(t), open(t)
	out, in := channel(t, sender, "go-signed", false), channel(t, receiver, "go-signed", true)
	key, err := sixcast.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := sixcast.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := out.SignWith(key); err != nil {
		t.Fatal(err)
	}
	if err := in.Trust(stranger.PublicKey()); err != nil {
		t.Fatal(err)
	}
	send(t, out, []byte("untrusted"))
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if message, err := in.Recv(short); err == nil {
		t.Errorf("an untrusted sender's message arrived: %q", message.Payload)
	}
	if stats, _ := in.Stats(); stats.Drops["untrusted_signer"] == 0 {
		t.Errorf("no untrusted drop counted: %v", stats.Drops)
	}
	if err := in.Trust(key.PublicKey()); err != nil {
		t.Fatal(err)
	}
	send(t, out, []byte("trusted"))
	if message := recv(t, in); string(message.Payload) != "trusted" {
		t.Errorf("got %q", message.Payload)
	}
}
