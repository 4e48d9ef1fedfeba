// Command agent-go carries out the controller's signed commands and acknowledges them: the Go
// twin of agent.py, with the same options, messages and output, so that one controller drives
// agents of both languages.
//
//	agent-go --name web2 --trust controller.key.pub --dir /srv/pushed
//
// The agent trusts one public key: the library then delivers only commands signed by it and
// counts what it refused, which the agent reports. A command asks the agent to write a file in
// its directory; the agent answers on <channel>.acks. A resent command (same id) is
// acknowledged again but not done again.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sixcast/sixcast/bindings-go"
)

// command is what the controller sends.
type command struct {
	ID      string  `json:"id"`
	Write   *string `json:"write"`
	Content string  `json:"content"`
}

// ack is what the agent answers.
type ack struct {
	ID     string `json:"id"`
	Agent  string `json:"agent"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

type outcome struct {
	ok     bool
	detail string
}

// writeFile carries out a command; even a trusted controller only names a file inside the
// agent's own directory.
func writeFile(directory string, name *string, content string) outcome {
	if name == nil || *name == "" || *name == "." || *name == ".." || filepath.Base(*name) != *name {
		return outcome{false, fmt.Sprintf("refused file name %q", deref(name))}
	}
	target := filepath.Join(directory, *name)
	temporary := filepath.Join(directory, "."+*name+".tmp")
	// The rename makes the new file appear whole or not at all.
	if err := os.WriteFile(temporary, []byte(content), 0o644); err != nil {
		return outcome{false, fmt.Sprintf("cannot write %s: %v", target, err)}
	}
	if err := os.Rename(temporary, target); err != nil {
		return outcome{false, fmt.Sprintf("cannot write %s: %v", target, err)}
	}
	return outcome{true, "wrote " + target}
}

func deref(text *string) string {
	if text == nil {
		return ""
	}
	return *text
}

type agent struct {
	name, directory string
	acks            *sixcast.Channel
	done            map[string]outcome
}

func (a *agent) handle(payload []byte) error {
	var cmd command
	if err := json.Unmarshal(payload, &cmd); err != nil || cmd.ID == "" {
		fmt.Printf("%s: ignored a signed message that is not a command\n", a.name)
		return nil
	}
	if _, seen := a.done[cmd.ID]; seen {
		fmt.Printf("%s: command %s already done; acknowledging again\n", a.name, cmd.ID)
	} else {
		a.done[cmd.ID] = writeFile(a.directory, cmd.Write, cmd.Content)
		fmt.Printf("%s: command %s: %s\n", a.name, cmd.ID, a.done[cmd.ID].detail)
	}
	result := a.done[cmd.ID]
	answer, err := json.Marshal(ack{ID: cmd.ID, Agent: a.name, OK: result.ok, Detail: result.detail})
	if err != nil {
		return err
	}
	if err := a.acks.Send(answer); err != nil {
		return err
	}
	return a.acks.Flush()
}

// refusals is what the library refused so far, as "reason=count" sorted by reason.
func refusals(commands *sixcast.Channel) string {
	stats, err := commands.Stats()
	if err != nil {
		return ""
	}
	var counts []string
	for reason, count := range stats.Drops {
		if count > 0 {
			counts = append(counts, fmt.Sprintf("%s=%d", reason, count))
		}
	}
	sort.Strings(counts)
	return strings.Join(counts, ", ")
}

func run() error {
	name := flag.String("name", "", "this agent's name in acknowledgements")
	trust := flag.String("trust", "", "the controller's public key file (KEY_FILE.pub)")
	directory := flag.String("dir", "", "directory the pushed files are written to")
	channelName := flag.String("channel", "webservers", "the commands' channel")
	flag.Parse()
	if *name == "" || *trust == "" || *directory == "" {
		flag.Usage()
		os.Exit(2)
	}
	keyText, err := os.ReadFile(*trust)
	if err != nil {
		return err
	}
	trusted, err := sixcast.ParsePublicKey(string(keyText))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*directory, 0o755); err != nil {
		return err
	}
	node, err := sixcast.Open(nil)
	if err != nil {
		return err
	}
	defer node.Close()
	commands, err := node.Channel(*channelName)
	if err != nil {
		return err
	}
	// From the first trusted key on, only datagrams signed by a trusted key are delivered.
	if err := commands.Trust(trusted); err != nil {
		return err
	}
	acks, err := node.Channel(*channelName + ".acks")
	if err != nil {
		return err
	}
	if err := commands.Join(); err != nil {
		return err
	}
	fmt.Printf("%s: listening on %s (%s), trusting %s\n", *name, *channelName, commands.Group(), trusted.Fingerprint())
	stopped, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a := &agent{name: *name, directory: *directory, acks: acks, done: map[string]outcome{}}
	reported := ""
	for stopped.Err() == nil {
		wait, cancel := context.WithTimeout(stopped, time.Second)
		message, err := commands.Recv(wait)
		cancel()
		switch {
		case err == nil:
			if err := a.handle(message.Payload); err != nil {
				return err
			}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		default:
			return err
		}
		if refused := refusals(commands); refused != reported {
			fmt.Printf("%s: refused so far (unsigned or not signed by the trusted key): %s\n", *name, refused)
			reported = refused
		}
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agent-go:", err)
		os.Exit(1)
	}
}
