// Package sixcast is IPv6 multicast group messaging for Go: a channel is a name such as
// "webservers", hashed into an IPv6 multicast group; one send reaches every member, and where
// the network carries no multicast, sixcast falls back to unicast relays by itself.
//
// It calls the sixcast C library (bindings-c) through cgo, found with pkg-config:
//
//	make -C bindings-c install PREFIX=/usr/local
//	go get github.com/sixcast/sixcast/bindings-go
//
// Contexts, channels and keys are safe for concurrent use. Close what you open; finalizers
// free what is forgotten, but only when the garbage collector gets to it.
package sixcast

/*
#cgo pkg-config: sixcast
#include <sixcast.h>
*/
import "C"

// Version is the version of the sixcast C library this package runs on, such as "0.1.0".
func Version() string {
	return C.GoString(C.sixcast_version())
}
