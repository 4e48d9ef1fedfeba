package sixcast_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sixcast/sixcast/bindings-go"
)

func TestConfigFieldsReadBackAndFailWithTheirKind(t *testing.T) {
	config := sixcast.NewConfig()
	if port, err := config.Get("port"); err != nil || port != "" {
		t.Errorf("default port %q, %v", port, err)
	}
	if err := config.Set("interfaces", "eth0,eth1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := config.Get("interfaces"); got != "eth0,eth1" {
		t.Errorf("interfaces %q", got)
	}
	if err := config.Set("stratum0", "[2001:db8::1]:6447"); err != nil {
		t.Fatal(err)
	}
	if err := config.Set("stratum0", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := config.Get("stratum0"); got != "" {
		t.Errorf("stratum0 not reset: %q", got)
	}
	if err := config.Set("colour", "blue"); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("unknown field: %v", err)
	}
	if err := config.Set("port\x00", "1"); !errors.Is(err, sixcast.ErrInvalidArgument) {
		t.Errorf("a NUL in the field: %v", err)
	}
	if err := config.Set("profile", "embedded-rp"); err != nil {
		t.Fatal(err)
	}
	if err := config.Validate(); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("embedded-rp without rp: %v", err)
	}
	if err := config.Set("rp", "2001:db8:5c::5/64"); err != nil {
		t.Fatal(err)
	}
	if err := config.Validate(); err != nil {
		t.Errorf("embedded-rp with rp: %v", err)
	}
}

func TestReliableIsABooleanTheCoreChecksAgainstTheProfile(t *testing.T) {
	config := sixcast.NewConfig()
	if got, err := config.Get("reliable"); err != nil || got != "false" {
		t.Errorf("default reliable %q, %v", got, err)
	}
	if err := config.Set("reliable", "true"); err != nil {
		t.Fatal(err)
	}
	if got, _ := config.Get("reliable"); got != "true" {
		t.Errorf("reliable %q", got)
	}
	if err := config.Set("reliable", "yes"); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("reliable yes: %v", err)
	}
	if err := config.Validate(); err != nil {
		t.Errorf("reliable sixcast: %v", err)
	}
	if err := config.Set("profile", "librecast"); err != nil {
		t.Fatal(err)
	}
	// Only the core knows that librecast datagrams carry no header: a dropped field would pass.
	err := config.Validate()
	if !errors.Is(err, sixcast.ErrInvalidConfig) || !strings.Contains(err.Error(), "reliable") {
		t.Errorf("reliable librecast: %v", err)
	}
	if context, err := sixcast.Open(config); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("opening a reliable librecast context: %v", err)
		if context != nil {
			context.Close()
		}
	}
	if err := config.Set("reliable", "false"); err != nil {
		t.Fatal(err)
	}
	if err := config.Validate(); err != nil {
		t.Errorf("librecast: %v", err)
	}
}

func TestKeysRoundTripThroughTheirFiles(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	signing, err := sixcast.SigningKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sixcast.SigningKeyFromSeed(seed[:31]); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("a short seed: %v", err)
	}
	reread, err := sixcast.ParseSigningKey(signing.FileText())
	if err != nil || reread.PublicKey().Fingerprint() != signing.PublicKey().Fingerprint() {
		t.Errorf("signing key file: %v", err)
	}
	public := signing.PublicKey()
	if len(public.Fingerprint()) != 16 || !strings.HasPrefix(public.FileText(), "sixcast-public-key-v1 ") {
		t.Errorf("public key %q %q", public.Fingerprint(), public.FileText())
	}
	same, err := sixcast.PublicKeyFromBytes(public.Bytes())
	if err != nil || same.FileText() != public.FileText() {
		t.Errorf("public key bytes: %v", err)
	}
	weak := make([]byte, 32)
	weak[0] = 1
	if _, err := sixcast.PublicKeyFromBytes(weak); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("a weak key: %v", err)
	}
	channelKey, err := sixcast.ChannelKeyFromBytes(5, seed)
	if err != nil || channelKey.ID() != 5 {
		t.Fatalf("channel key: %v", err)
	}
	copied, err := sixcast.ParseChannelKey(channelKey.FileText())
	if err != nil || copied.ID() != 5 {
		t.Errorf("channel key file: %v", err)
	}
	if _, err := sixcast.ParseChannelKey("sixcast-channel-key-v1 zz"); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("a bad key file: %v", err)
	}
	token, err := sixcast.IssueToken(signing, public, "ff1e:c0:1acf:916c:691a:a851:5b62:1339", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := sixcast.ParseToken(token.FileText()); err != nil || again.FileText() != token.FileText() {
		t.Errorf("token file: %v", err)
	}
	if _, err := sixcast.IssueToken(signing, public, "not-a-group", time.Now()); !errors.Is(err, sixcast.ErrInvalidAddress) {
		t.Errorf("a token for no group: %v", err)
	}
}

func TestVersion(t *testing.T) {
	if sixcast.Version() == "" {
		t.Error("no version")
	}
}

func TestFileReceiverNeedsAFolderThatExists(t *testing.T) {
	folder := t.TempDir()
	if _, err := sixcast.NewFileReceiver(filepath.Join(folder, "missing"), sixcast.FileReceiverOptions{}); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("a missing folder: %v", err)
	}
	file := filepath.Join(folder, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sixcast.NewFileReceiver(file, sixcast.FileReceiverOptions{MaxSize: 10, MaxTransfers: 1}); !errors.Is(err, sixcast.ErrInvalidConfig) {
		t.Errorf("a file, not a folder: %v", err)
	}
	if _, err := sixcast.NewFileReceiver(folder+"\x00", sixcast.FileReceiverOptions{}); !errors.Is(err, sixcast.ErrInvalidArgument) {
		t.Errorf("a NUL in the folder: %v", err)
	}
	receiver, err := sixcast.NewFileReceiver(folder, sixcast.FileReceiverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats, err := receiver.Stats(); err != nil || stats != (sixcast.FileStats{}) {
		t.Errorf("a new receiver's stats %+v, %v", stats, err)
	}
	receiver.Close()
	receiver.Close()
	if _, err := receiver.Stats(); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("stats after Close: %v", err)
	}
	// Refused before any channel is touched.
	if _, err := receiver.Recv(context.Background(), nil); !errors.Is(err, sixcast.ErrClosed) {
		t.Errorf("a receive after Close: %v", err)
	}
	if entries, err := os.ReadDir(folder); err != nil || len(entries) != 1 {
		t.Errorf("the receiver wrote into its folder: %v, %v", entries, err)
	}
}
