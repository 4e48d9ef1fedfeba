package sixcast

/*
#include <sixcast.h>
*/
import "C"

import "runtime"

// AddressOptions choose how names map to groups; the zero value is the sixcast profile at
// global scope.
type AddressOptions struct {
	// Profile is "sixcast" (""), "ssm", "embedded-rp" or "librecast".
	Profile string
	// RP is the rendezvous point of embedded-rp, "address/prefix-length".
	RP string
	// Scope is "link", "site", "org" or "global" ("").
	Scope string
}

// GroupAddress is the group of the channel called name: the IPv6 multicast address every
// member joins. It fails with ErrInvalidName for a name over 4096 bytes, ErrInvalidConfig for
// an unknown profile or scope, and ErrInvalidConfig or ErrInvalidAddress for a bad RP.
func GroupAddress(name []byte, options AddressOptions) (string, error) {
	if err := checkText(options.Profile, options.RP, options.Scope); err != nil {
		return "", err
	}
	profile, rp, scope := cOptional(options.Profile), cOptional(options.RP), cOptional(options.Scope)
	defer profile.free()
	defer rp.free()
	defer scope.free()
	bytes, length := cBytes(name)
	var address *C.char
	var cError *C.SixcastError
	status := C.sixcast_group_address(bytes, length, profile.ptr, rp.ptr, scope.ptr, &address, &cError)
	runtime.KeepAlive(name)
	if err := check(status, cError); err != nil {
		return "", err
	}
	return takeString(address), nil
}

// RelayedAddress is the relayed form of group, where relays re-send the channel's traffic. It
// fails with ErrUnsupported for librecast, which has none, and ErrInvalidAddress when group is
// not a group of the profile.
func RelayedAddress(group string, options AddressOptions) (string, error) {
	if err := checkText(group, options.Profile, options.RP); err != nil {
		return "", err
	}
	cGroup, profile, rp := cString(group), cOptional(options.Profile), cOptional(options.RP)
	defer cGroup.free()
	defer profile.free()
	defer rp.free()
	var address *C.char
	var cError *C.SixcastError
	if err := check(C.sixcast_relayed_address(cGroup.ptr, profile.ptr, rp.ptr, &address, &cError), cError); err != nil {
		return "", err
	}
	return takeString(address), nil
}

// DefaultPort is the UDP port of a profile: 6446, or 4242 for librecast.
func DefaultPort(options AddressOptions) (uint16, error) {
	if err := checkText(options.Profile, options.RP); err != nil {
		return 0, err
	}
	profile, rp := cOptional(options.Profile), cOptional(options.RP)
	defer profile.free()
	defer rp.free()
	var port C.uint16_t
	var cError *C.SixcastError
	if err := check(C.sixcast_default_port(profile.ptr, rp.ptr, &port, &cError), cError); err != nil {
		return 0, err
	}
	return uint16(port), nil
}
