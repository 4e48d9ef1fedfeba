// Command sixcast-agent is the Go conformance agent of the cross-language matrix;
// tests/conformance/agents/README.md specifies its command line. It uses only the package's
// public API.
//
//	sixcast-agent send <channel> <label>
//	sixcast-agent recv <channel> <count> <timeout-seconds>
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sixcast/sixcast/bindings-go"
)

const (
	patternSize = 1 << 20
	timedOut    = 3
)

func pattern() []byte {
	bytes := make([]byte, patternSize)
	for i := range bytes {
		bytes[i] = byte(i % 251)
	}
	return bytes
}

func send(channel *sixcast.Channel, label string) error {
	for _, payload := range [][]byte{[]byte("hello from " + label), nil, pattern()} {
		if err := channel.Send(payload); err != nil {
			return err
		}
	}
	return channel.Flush()
}

// line is what the agent prints of each message.
type line struct {
	Size      int     `json:"size"`
	Text      *string `json:"text"`
	PatternOK bool    `json:"pattern_ok"`
	Seq       uint64  `json:"seq"`
	Sender    string  `json:"sender"`
}

func recv(channel *sixcast.Channel, count int, timeout time.Duration) (int, error) {
	if err := channel.Join(); err != nil {
		return 1, err
	}
	expected := pattern()
	fmt.Println("READY")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for received := 0; received < count; received++ {
		message, err := channel.Recv(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return timedOut, nil
		}
		if err != nil {
			return 1, err
		}
		out := line{
			Size:      len(message.Payload),
			PatternOK: bytes.Equal(message.Payload, expected),
			Seq:       message.Seq,
			Sender:    message.Sender,
		}
		if len(message.Payload) <= 64 {
			text := string(message.Payload)
			out.Text = &text
		}
		encoded, err := json.Marshal(out)
		if err != nil {
			return 1, err
		}
		fmt.Println(string(encoded)) // stdout is unbuffered in Go: each line leaves at once
	}
	return 0, nil
}

func run(args []string) (int, error) {
	sending := len(args) == 3 && args[0] == "send"
	receiving := len(args) == 4 && args[0] == "recv"
	if !sending && !receiving {
		fmt.Fprintln(os.Stderr, "usage: sixcast-agent send <channel> <label> | recv <channel> <count> <timeout-seconds>")
		return 64, nil
	}
	context, err := sixcast.Open(nil)
	if err != nil {
		return 1, err
	}
	defer context.Close()
	channel, err := context.Channel(args[1])
	if err != nil {
		return 1, err
	}
	defer channel.Close()
	if sending {
		return 0, send(channel, args[2])
	}
	count, err := strconv.Atoi(args[2])
	if err != nil {
		return 64, err
	}
	seconds, err := strconv.ParseFloat(args[3], 64)
	if err != nil {
		return 64, err
	}
	return recv(channel, count, time.Duration(seconds*float64(time.Second)))
}

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sixcast-agent:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
