package sixcast

/*
#include <sixcast.h>
*/
import "C"

import "fmt"

// Kind is the kind of an Error: one per error kind of the sixcast core, with the same names in
// every language, plus two of this binding's own. Kinds are errors themselves, so that
// errors.Is(err, sixcast.ErrTimeout) tells an error's kind.
type Kind int

// The kinds, with the values of the C API's SixcastStatus.
const (
	// ErrInvalidName: a channel name is not acceptable (for example longer than 4096 bytes).
	ErrInvalidName Kind = C.SIXCAST_STATUS_INVALID_NAME
	// ErrInvalidConfig: a configuration value is out of range or inconsistent with the rest.
	ErrInvalidConfig Kind = C.SIXCAST_STATUS_INVALID_CONFIG
	// ErrInvalidAddress: an address is not of the form the operation needs.
	ErrInvalidAddress Kind = C.SIXCAST_STATUS_INVALID_ADDRESS
	// ErrUnknownInterface: a named network interface does not exist or cannot carry multicast.
	ErrUnknownInterface Kind = C.SIXCAST_STATUS_UNKNOWN_INTERFACE
	// ErrMessageTooLarge: a message is larger than the configured maximum message size.
	ErrMessageTooLarge Kind = C.SIXCAST_STATUS_MESSAGE_TOO_LARGE
	// ErrMalformed: bytes do not form a valid datagram or message of the protocol.
	ErrMalformed Kind = C.SIXCAST_STATUS_MALFORMED
	// ErrTimeout: a blocking call did not complete within its time limit.
	ErrTimeout Kind = C.SIXCAST_STATUS_TIMEOUT
	// ErrClosed: the context or channel has been closed.
	ErrClosed Kind = C.SIXCAST_STATUS_CLOSED
	// ErrIo: the operating system refused a network operation.
	ErrIo Kind = C.SIXCAST_STATUS_IO
	// ErrUnsupported: the platform or the chosen profile does not support the operation; also
	// kinds newer than this binding, with the kind's name in front of the message.
	ErrUnsupported Kind = C.SIXCAST_STATUS_UNSUPPORTED
	// ErrInvalidArgument: the binding passed the C library something it refused (text with a
	// NUL byte, say): a misuse, not a condition of the network.
	ErrInvalidArgument Kind = C.SIXCAST_STATUS_INVALID_ARGUMENT
	// ErrInternal: the library failed in a way it did not expect: a bug in sixcast.
	ErrInternal Kind = C.SIXCAST_STATUS_INTERNAL
)

// Error returns the kind's name, such as "Timeout".
func (k Kind) Error() string {
	return C.GoString(C.sixcast_status_name(C.int32_t(k)))
}

// Error is a failure of the sixcast library: its Kind and a message for people.
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("sixcast: %s: %s", e.Kind.Error(), e.Message)
}

// Is reports whether target is e's Kind, for errors.Is.
func (e *Error) Is(target error) bool {
	kind, ok := target.(Kind)
	return ok && kind == e.Kind
}

// check turns a status and the error the call stored into a Go error; it frees the C error.
func check(status uint32, cError *C.SixcastError) error {
	defer C.sixcast_error_free(cError)
	if status == C.SIXCAST_STATUS_OK {
		return nil
	}
	return &Error{Kind: Kind(status), Message: C.GoString(C.sixcast_error_message(cError))}
}

// RaiseErrorKind returns an error of the core's kind named kind (such as "Timeout"), made by
// the conversion every other call uses; tests check with it that each kind arrives as its own.
// An unknown name gives ErrInvalidConfig.
func RaiseErrorKind(kind string) error {
	if err := checkText(kind); err != nil {
		return err
	}
	text := cString(kind)
	defer text.free()
	var cError *C.SixcastError
	return check(C.sixcast_raise_error_kind(text.ptr, &cError), cError)
}
