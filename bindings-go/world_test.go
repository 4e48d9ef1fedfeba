package sixcast_test

// Tests that send multicast. run-tests runs them (-run World) inside a host of a throwaway
// network-namespace world, and everything else with -skip World, so they never touch this
// machine's own interfaces.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
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

func TestWorldSendRateRefusesTrySendAndShortSendTimeouts(t *testing.T) {
	inWorld(t)
	config := sixcast.NewConfig()
	// One message every 100 ms; the pacer's 10 ms burst lets the first go at once.
	for field, value := range map[string]string{"hop_limit": "1", "send_rate_messages": "10"} {
		if err := config.Set(field, value); err != nil {
			t.Fatal(err)
		}
	}
	paced, err := sixcast.Open(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { paced.Close() })
	receiver := open(t)
	out, in := channel(t, paced, "go-paced", false), channel(t, receiver, "go-paced", true)

	if err := out.TrySend([]byte("first")); err != nil {
		t.Fatalf("the first TrySend: %v", err)
	}
	err = out.TrySend([]byte("refused"))
	var refusal *sixcast.Error
	if !errors.Is(err, sixcast.ErrTimeout) || !errors.As(err, &refusal) || refusal.Kind != sixcast.ErrTimeout {
		t.Errorf("a second TrySend gives %v", err)
	}
	if err := out.SendTimeout([]byte("also refused"), 50*time.Millisecond); !errors.Is(err, sixcast.ErrTimeout) {
		t.Errorf("SendTimeout(50 ms) gives %v", err)
	}
	started := time.Now()
	if err := out.SendTimeout([]byte("second"), 500*time.Millisecond); err != nil {
		t.Errorf("SendTimeout(500 ms) gives %v", err)
	}
	// The turn comes 100 ms after the first message, less the pacer's burst.
	if waited := time.Since(started); waited < 80*time.Millisecond || waited >= 400*time.Millisecond {
		t.Errorf("SendTimeout(500 ms) returned after %v", waited)
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	if sent, err := out.Stats(); err != nil || sent.MessagesSent != 2 {
		t.Errorf("sender stats %+v, %v", sent, err)
	}
	if first, second := recv(t, in), recv(t, in); string(first.Payload) != "first" || string(second.Payload) != "second" {
		t.Errorf("payloads %q %q", first.Payload, second.Payload)
	}
	// The refused messages were never queued, so they never left.
	quiet, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if message, err := in.Recv(quiet); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third message %v, %v", message, err)
	}
	out.Close()
	if err := out.TrySend([]byte("late")); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("TrySend after Close gives %v", err)
	}
	if err := out.SendTimeout([]byte("late"), time.Second); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("SendTimeout after Close gives %v", err)
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

// numbered is the MESSAGES datagram of a made-up sender carrying one message, "numbered", of
// sequence number seq, as docs/wire-format.md lays it out: the 24-byte header (magic, version 1,
// type 1, no flags, one record, sender, seq), then the record's length and payload.
func numbered(sender, seq uint64) []byte {
	datagram := []byte{0x36, 0x63, 1, 1, 0, 0, 0, 1}
	datagram = binary.BigEndian.AppendUint64(datagram, sender)
	datagram = binary.BigEndian.AppendUint64(datagram, seq)
	return append(append(datagram, 8), "numbered"...)
}

func TestWorldSenderLossesCountTheSkippedMessagesOfEachSender(t *testing.T) {
	inWorld(t)
	receiver := open(t)
	in := channel(t, receiver, "go-sender-losses", true)
	if losses, err := in.SenderLosses(); err != nil || len(losses) != 0 {
		t.Errorf("no sender yet: %+v, %v", losses, err)
	}
	// Messages 0, 1 and 4 of one made-up sender and 0, 1 and 2 of another, from a plain UDP
	// socket of this host: multicast loopback on eth0 carries them to the channel.
	sent := []struct{ sender, seq uint64 }{{0x42, 0}, {0x42, 1}, {0x42, 4}, {0x07, 0}, {0x07, 1}, {0x07, 2}}
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var optErr error
	err = raw.Control(func(fd uintptr) {
		optErr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, eth0.Index)
		if optErr == nil {
			optErr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_LOOP, 1)
		}
	})
	if err != nil || optErr != nil {
		t.Fatal(err, optErr)
	}
	group := &net.UDPAddr{IP: net.ParseIP(in.Group()), Port: int(receiver.Port())}
	for _, message := range sent {
		if _, err := conn.WriteToUDP(numbered(message.sender, message.seq), group); err != nil {
			t.Fatal(err)
		}
	}
	heard := map[string]int{}
	for range sent {
		message := recv(t, in)
		heard[fmt.Sprintf("%s:%d", message.Sender, message.Seq)]++
	}
	for _, message := range sent {
		if key := fmt.Sprintf("%016x:%d", message.sender, message.seq); heard[key] != 1 {
			t.Errorf("%s heard %d times: %v", key, heard[key], heard)
		}
	}
	if stats, err := in.Stats(); err != nil || stats.Lost != 2 {
		t.Errorf("stats %+v, %v", stats, err)
	}
	// By node id: the sender without a gap first.
	two, four := uint64(2), uint64(4)
	want := []sixcast.SenderLoss{
		{Sender: "0000000000000007", HighestSeq: &two, Lost: 0},
		{Sender: "0000000000000042", HighestSeq: &four, Lost: 2},
	}
	losses, err := in.SenderLosses()
	if err != nil || !reflect.DeepEqual(losses, want) {
		got, _ := json.Marshal(losses)
		t.Errorf("sender losses %s, %v", got, err)
	}
	in.Close()
	if _, err := in.SenderLosses(); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("a closed channel reports losses: %v", err)
	}
}

func TestWorldSendFileRefusesBadNamesBeforeSending(t *testing.T) {
	inWorld(t)
	path := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(path, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	out := channel(t, open(t), "go-files-refused", false)
	for _, name := range []string{"../x", "a/b", ".hidden"} {
		_, err := out.SendFile(path, sixcast.SendFileOptions{Name: name})
		if !errors.Is(err, sixcast.ErrInvalidConfig) || !strings.Contains(err.Error(), "plain name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := out.SendFile(path+".missing", sixcast.SendFileOptions{}); !errors.Is(err, sixcast.ErrIo) {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := out.SendFile(path, sixcast.SendFileOptions{Name: "a\x00b"}); !errors.Is(err, sixcast.ErrInvalidArgument) {
		t.Errorf("a NUL in the name: %v", err)
	}
	if stats, err := out.Stats(); err != nil || stats.MessagesSent != 0 {
		t.Errorf("a refused file sent %d messages, %v", stats.MessagesSent, err)
	}
}

func TestWorldFileArrivesWholeAtAJoinedReceiver(t *testing.T) {
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
	// A FileReceiver does not join: the application does.
	out, in := channel(t, sender, "go-files", false), channel(t, open(t), "go-files", true)
	data := make([]byte, 200*1024)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	source := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(source, data, 0o600); err != nil {
		t.Fatal(err)
	}
	inbox := t.TempDir()
	receiver, err := sixcast.NewFileReceiver(inbox, sixcast.FileReceiverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer receiver.Close()

	// Nothing is sent yet: a deadline and a cancel end the wait with the context's error.
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, err := receiver.Recv(short, in); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a deadline gives %v", err)
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancelNow)
	started := time.Now()
	if _, err := receiver.Recv(cancelled, in); !errors.Is(err, context.Canceled) || time.Since(started) > 3*time.Second {
		t.Errorf("a cancel gives %v after %v", err, time.Since(started))
	}

	done := make(chan sentFileResult, 1)
	go func() {
		// Not a file: the receiver counts it and passes over it.
		if err := out.Send([]byte("not a file")); err != nil {
			done <- sentFileResult{err: err}
			return
		}
		sent, err := out.SendFile(source, sixcast.SendFileOptions{Name: "received.bin"})
		done <- sentFileResult{sent, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	outcome, err := receiver.Recv(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	result := <-done
	if result.err != nil {
		t.Fatal(result.err)
	}
	sent := result.sent
	if sent.Name != "received.bin" || sent.Size != uint64(len(data)) || sent.SHA256 != digest ||
		sent.Chunk < 64 || sent.Chunk > 1232 {
		t.Errorf("sent %+v", sent)
	}
	if !outcome.Complete || outcome.Name != "received.bin" || outcome.Path != filepath.Join(inbox, "received.bin") ||
		outcome.Size != uint64(len(data)) || outcome.SHA256 != digest ||
		outcome.Sender != sender.NodeID() || outcome.Resumed != 0 || outcome.Missing != 0 {
		t.Errorf("outcome %+v", outcome)
	}
	received, err := os.ReadFile(filepath.Join(inbox, "received.bin"))
	if err != nil || !bytes.Equal(received, data) || sha256.Sum256(received) != sum {
		t.Errorf("the received file differs from the source (%d bytes, %v)", len(received), err)
	}
	// The partial file and its state are gone: only the named file is left.
	if entries, err := os.ReadDir(inbox); err != nil || len(entries) != 1 || entries[0].Name() != "received.bin" {
		t.Errorf("the inbox holds %v, %v", entries, err)
	}
	chunks := (uint64(len(data)) + uint64(sent.Chunk) - 1) / max(uint64(sent.Chunk), 1)
	stats, err := receiver.Stats()
	if err != nil || stats.Chunks != chunks || stats.DuplicateChunks != 0 || stats.OtherMessages != 1 ||
		stats.Frames < chunks+1 || stats.Malformed != 0 || stats.Refused != 0 {
		t.Errorf("receiver stats %+v (%d chunks), %v", stats, chunks, err)
	}
}

// sentFileResult is what a goroutine's SendFile returned.
type sentFileResult struct {
	sent sixcast.SentFile
	err  error
}
