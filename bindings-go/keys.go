package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// ChannelKey is a channel's symmetric key: whoever holds it reads and writes the channel's
// sealed traffic. Its ID names it in sealed datagrams, so that keys rotate without downtime.
type ChannelKey struct{ ptr *C.SixcastChannelKey }

// SigningKey is a sender's Ed25519 signing key; receivers trust its PublicKey.
type SigningKey struct{ ptr *C.SixcastSigningKey }

// PublicKey is a sender's Ed25519 public key, as receivers trust it.
type PublicKey struct{ ptr *C.SixcastPublicKey }

// Token is an issuer's signed statement that a key may sign a channel's datagrams until a time.
type Token struct{ ptr *C.SixcastToken }

func newChannelKey(ptr *C.SixcastChannelKey) *ChannelKey {
	key := &ChannelKey{ptr}
	runtime.SetFinalizer(key, func(key *ChannelKey) { C.sixcast_channel_key_free(key.ptr) })
	return key
}

func newSigningKey(ptr *C.SixcastSigningKey) *SigningKey {
	key := &SigningKey{ptr}
	runtime.SetFinalizer(key, func(key *SigningKey) { C.sixcast_signing_key_free(key.ptr) })
	return key
}

func newPublicKey(ptr *C.SixcastPublicKey) *PublicKey {
	key := &PublicKey{ptr}
	runtime.SetFinalizer(key, func(key *PublicKey) { C.sixcast_public_key_free(key.ptr) })
	return key
}

func newToken(ptr *C.SixcastToken) *Token {
	token := &Token{ptr}
	runtime.SetFinalizer(token, func(token *Token) { C.sixcast_token_free(token.ptr) })
	return token
}

// fileText reads a key's file text through f.
func fileText(f func(**C.char, **C.SixcastError) uint32) string {
	var text *C.char
	var cError *C.SixcastError
	if check(f(&text, &cError), cError) != nil {
		return ""
	}
	return takeString(text)
}

// GenerateChannelKey makes a channel key with a random id from the system's random numbers.
func GenerateChannelKey() (*ChannelKey, error) {
	var ptr *C.SixcastChannelKey
	var cError *C.SixcastError
	if err := check(C.sixcast_channel_key_generate(&ptr, &cError), cError); err != nil {
		return nil, err
	}
	return newChannelKey(ptr), nil
}

// ChannelKeyFromBytes is the channel key of id and 32 secret bytes.
func ChannelKeyFromBytes(id uint32, secret []byte) (*ChannelKey, error) {
	bytes, length := cBytes(secret)
	var ptr *C.SixcastChannelKey
	var cError *C.SixcastError
	status := C.sixcast_channel_key_from_bytes(C.uint32_t(id), bytes, length, &ptr, &cError)
	runtime.KeepAlive(secret)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	return newChannelKey(ptr), nil
}

// ParseChannelKey parses the text of a channel key file.
func ParseChannelKey(text string) (*ChannelKey, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	cText := cString(text)
	defer cText.free()
	var ptr *C.SixcastChannelKey
	var cError *C.SixcastError
	if err := check(C.sixcast_channel_key_from_file_text(cText.ptr, &ptr, &cError), cError); err != nil {
		return nil, err
	}
	return newChannelKey(ptr), nil
}

// ID is the key's id.
func (k *ChannelKey) ID() uint32 {
	defer runtime.KeepAlive(k)
	return uint32(C.sixcast_channel_key_id(k.ptr))
}

// FileText is the key file's text; write it to a file only its owner can read.
func (k *ChannelKey) FileText() string {
	defer runtime.KeepAlive(k)
	return fileText(func(text **C.char, e **C.SixcastError) uint32 {
		return C.sixcast_channel_key_to_file_text(k.ptr, text, e)
	})
}

// GenerateSigningKey makes a signing key from the system's random numbers.
func GenerateSigningKey() (*SigningKey, error) {
	var ptr *C.SixcastSigningKey
	var cError *C.SixcastError
	if err := check(C.sixcast_signing_key_generate(&ptr, &cError), cError); err != nil {
		return nil, err
	}
	return newSigningKey(ptr), nil
}

// SigningKeyFromSeed is the signing key of a 32-byte secret seed (RFC 8032).
func SigningKeyFromSeed(seed []byte) (*SigningKey, error) {
	bytes, length := cBytes(seed)
	var ptr *C.SixcastSigningKey
	var cError *C.SixcastError
	status := C.sixcast_signing_key_from_seed(bytes, length, &ptr, &cError)
	runtime.KeepAlive(seed)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	return newSigningKey(ptr), nil
}

// ParseSigningKey parses the text of a signing key file.
func ParseSigningKey(text string) (*SigningKey, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	cText := cString(text)
	defer cText.free()
	var ptr *C.SixcastSigningKey
	var cError *C.SixcastError
	if err := check(C.sixcast_signing_key_from_file_text(cText.ptr, &ptr, &cError), cError); err != nil {
		return nil, err
	}
	return newSigningKey(ptr), nil
}

// FileText is the key file's text; write it to a file only its owner can read.
func (k *SigningKey) FileText() string {
	defer runtime.KeepAlive(k)
	return fileText(func(text **C.char, e **C.SixcastError) uint32 {
		return C.sixcast_signing_key_to_file_text(k.ptr, text, e)
	})
}

// PublicKey is the public half, for receivers' Channel.Trust.
func (k *SigningKey) PublicKey() *PublicKey {
	defer runtime.KeepAlive(k)
	var ptr *C.SixcastPublicKey
	C.sixcast_signing_key_public_key(k.ptr, &ptr, nil)
	return newPublicKey(ptr)
}

// PublicKeyFromBytes is the public key of 32 bytes; it fails with ErrInvalidConfig for bytes
// that are not a valid (or are a weak) Ed25519 key.
func PublicKeyFromBytes(key []byte) (*PublicKey, error) {
	bytes, length := cBytes(key)
	var ptr *C.SixcastPublicKey
	var cError *C.SixcastError
	status := C.sixcast_public_key_from_bytes(bytes, length, &ptr, &cError)
	runtime.KeepAlive(key)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	return newPublicKey(ptr), nil
}

// ParsePublicKey parses the text of a public key file.
func ParsePublicKey(text string) (*PublicKey, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	cText := cString(text)
	defer cText.free()
	var ptr *C.SixcastPublicKey
	var cError *C.SixcastError
	if err := check(C.sixcast_public_key_from_file_text(cText.ptr, &ptr, &cError), cError); err != nil {
		return nil, err
	}
	return newPublicKey(ptr), nil
}

// Bytes are the key's 32 bytes.
func (k *PublicKey) Bytes() []byte {
	defer runtime.KeepAlive(k)
	bytes := make([]byte, 32)
	C.sixcast_public_key_to_bytes(k.ptr, (*C.uint8_t)(unsafe.Pointer(&bytes[0])))
	return bytes
}

// Fingerprint is the key's short name carried in signed datagrams: 16 hex digits.
func (k *PublicKey) Fingerprint() string {
	defer runtime.KeepAlive(k)
	return takeString(C.sixcast_public_key_fingerprint(k.ptr))
}

// FileText is the public key file's text.
func (k *PublicKey) FileText() string {
	defer runtime.KeepAlive(k)
	return fileText(func(text **C.char, e **C.SixcastError) uint32 {
		return C.sixcast_public_key_to_file_text(k.ptr, text, e)
	})
}

// IssueToken issues, signed with issuer, a token for subject on the channel whose canonical
// group is group (Channel.Group), valid through notAfter.
func IssueToken(issuer *SigningKey, subject *PublicKey, group string, notAfter time.Time) (*Token, error) {
	if err := checkText(group); err != nil {
		return nil, err
	}
	cGroup := cString(group)
	defer cGroup.free()
	var ptr *C.SixcastToken
	var cError *C.SixcastError
	status := C.sixcast_token_issue(issuer.ptr, subject.ptr, cGroup.ptr, C.uint64_t(notAfter.Unix()), &ptr, &cError)
	runtime.KeepAlive(issuer)
	runtime.KeepAlive(subject)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	return newToken(ptr), nil
}

// ParseToken parses the text of a token file.
func ParseToken(text string) (*Token, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	cText := cString(text)
	defer cText.free()
	var ptr *C.SixcastToken
	var cError *C.SixcastError
	if err := check(C.sixcast_token_from_file_text(cText.ptr, &ptr, &cError), cError); err != nil {
		return nil, err
	}
	return newToken(ptr), nil
}

// FileText is the token file's text.
func (t *Token) FileText() string {
	defer runtime.KeepAlive(t)
	return fileText(func(text **C.char, e **C.SixcastError) uint32 {
		return C.sixcast_token_to_file_text(t.ptr, text, e)
	})
}

// SetKey seals everything sent from now on with key, and accepts only datagrams sealed with it
// or a key added with AddKey.
func (c *Channel) SetKey(key *ChannelKey) error {
	defer runtime.KeepAlive(key)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_set_key(ptr, key.ptr, e)
	})
}

// AddKey accepts datagrams sealed with key too, without sending with it: for rotating keys.
func (c *Channel) AddKey(key *ChannelKey) error {
	defer runtime.KeepAlive(key)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_add_key(ptr, key.ptr, e)
	})
}

// RemoveKey stops accepting datagrams sealed with the key of id; it reports whether the
// channel held it.
func (c *Channel) RemoveKey(id uint32) (bool, error) {
	var removed C.bool
	err := c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_remove_key(ptr, C.uint32_t(id), &removed, e)
	})
	return bool(removed), err
}

// SignWith signs everything sent from now on with key.
func (c *Channel) SignWith(key *SigningKey) error {
	defer runtime.KeepAlive(key)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_sign_with(ptr, key.ptr, e)
	})
}

// Trust accepts datagrams signed with key; from the first trusted key on, only signed ones.
func (c *Channel) Trust(key *PublicKey) error {
	defer runtime.KeepAlive(key)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_trust(ptr, key.ptr, e)
	})
}

// Present presents token with every signed datagram, so that receivers trusting its issuer
// accept this channel's signing key until the token expires.
func (c *Channel) Present(token *Token) error {
	defer runtime.KeepAlive(token)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_present(ptr, token.ptr, e)
	})
}

// TrustIssuer accepts datagrams signed by any key presenting an unexpired token of issuer for
// this channel; like Trust, it makes the channel accept only signed datagrams.
func (c *Channel) TrustIssuer(issuer *PublicKey) error {
	defer runtime.KeepAlive(issuer)
	return c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_channel_trust_issuer(ptr, issuer.ptr, e)
	})
}
