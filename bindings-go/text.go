package sixcast

/*
#include <stdlib.h>
#include <sixcast.h>
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// checkText fails with ErrInvalidArgument when a text holds a NUL byte, which C would read as
// its end.
func checkText(texts ...string) error {
	for _, text := range texts {
		if strings.IndexByte(text, 0) >= 0 {
			return &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("%q holds a NUL byte", text)}
		}
	}
	return nil
}

// cText is a C copy of a Go string, for one call; NULL when the Go side has none.
type cText struct {
	ptr *C.char
}

func cString(text string) cText {
	return cText{ptr: C.CString(text)}
}

// cOptional is NULL for "", else a copy of text.
func cOptional(text string) cText {
	if text == "" {
		return cText{}
	}
	return cString(text)
}

func (t cText) free() {
	C.free(unsafe.Pointer(t.ptr))
}

// takeString copies a string the library returned and frees it; "" for NULL.
func takeString(text *C.char) string {
	if text == nil {
		return ""
	}
	defer C.sixcast_string_free(text)
	return C.GoString(text)
}

// splitList splits the library's comma-separated lists; "" is the empty list.
func splitList(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(text, ",")
}

// cBytes points at the bytes of data for one call (NULL for none). cgo's pointer rules allow
// passing Go memory that holds no Go pointers.
func cBytes(data []byte) (*C.uint8_t, C.size_t) {
	if len(data) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(data))
}
