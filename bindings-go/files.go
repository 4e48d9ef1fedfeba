package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"time"
)

// SendFileOptions says how Channel.SendFile sends a file.
type SendFileOptions struct {
	// Passes is how many times the whole file is sent, so that receivers that join late
	// complete it in a later pass; 0 sends it once.
	Passes uint32
	// Name is the name receivers give the file; "" is the path's last component. A name that
	// is not a plain one (a path, or starting with '.') fails with ErrInvalidConfig.
	Name string
}

// SentFile is what Channel.SendFile sent.
type SentFile struct {
	// Name is the name receivers give the file.
	Name string `json:"name"`
	// Size is its length in bytes.
	Size uint64 `json:"size"`
	// SHA256 is its SHA-256, 64 hex digits.
	SHA256 string `json:"sha256"`
	// Chunk is the number of bytes per DATA frame.
	Chunk uint32 `json:"chunk"`
}

// SendFile sends the file at path to every receiver of the channel (docs/files.md) and
// returns once every frame was handed to the channel; on a reliable context (Config field
// "reliable") every chunk arrives or its loss is reported, and closing the context waits for
// the receivers' last repairs. The send holds an OS thread, and Close of the channel waits for
// it. It fails with ErrInvalidConfig for a name that is not a plain one, ErrIo if the file
// cannot be read, ErrMessageTooLarge if it has too many chunks for the channel's datagram
// size, and as Send does.
func (c *Channel) SendFile(path string, opts SendFileOptions) (SentFile, error) {
	if err := checkText(path, opts.Name); err != nil {
		return SentFile{}, err
	}
	passes := opts.Passes
	if passes == 0 {
		passes = 1
	}
	cPath, cName := cString(path), cOptional(opts.Name)
	defer cPath.free()
	defer cName.free()
	var text *C.char
	err := c.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
		return C.sixcast_send_file(ptr, cPath.ptr, C.uint32_t(passes), cName.ptr, &text, e)
	})
	if err != nil {
		return SentFile{}, err
	}
	var sent SentFile
	err = json.Unmarshal([]byte(takeString(text)), &sent)
	return sent, err
}

// FileReceiverOptions says which files a FileReceiver takes.
type FileReceiverOptions struct {
	// MaxSize refuses offers of larger files, in bytes; 0: no limit.
	MaxSize uint64
	// MaxTransfers is how many files are received at once at most; offers beyond are refused.
	// 0: 16.
	MaxTransfers uint32
}

// FileOutcome is how a transfer ended at a FileReceiver. Complete says which fields are set:
//
//   - true: the file is whole, its SHA-256 checked, and named; Name, Path, Size, SHA256 (64
//     hex digits), Sender (16 hex digits) and Resumed (bytes an earlier receiver had kept) are
//     set;
//   - false: the sender finished its last pass before the file was whole here (this receiver
//     joined late); Name, Size and Missing are set, and what arrived is kept for a later
//     sending of the same file.
type FileOutcome struct {
	Complete bool   `json:"complete"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Size     uint64 `json:"size"`
	SHA256   string `json:"sha256"`
	Sender   string `json:"sender"`
	Resumed  uint64 `json:"resumed"`
	Missing  uint64 `json:"missing"`
}

// FileStats are the counters of a FileReceiver.
type FileStats struct {
	// Frames counts messages that were file frames.
	Frames uint64 `json:"frames"`
	// OtherMessages counts messages that were not (other traffic on the channel).
	OtherMessages uint64 `json:"other_messages"`
	// Malformed counts frames that did not decode, or whose chunk is not one of its file's.
	Malformed uint64 `json:"malformed"`
	// Refused counts offers refused: too large, too many at once, or a name being received.
	Refused uint64 `json:"refused"`
	// Unfollowed counts DATA and DONE frames of no transfer this receiver follows.
	Unfollowed uint64 `json:"unfollowed"`
	// Chunks counts chunks written.
	Chunks uint64 `json:"chunks"`
	// DuplicateChunks counts chunks held already (a later pass).
	DuplicateChunks uint64 `json:"duplicate_chunks"`
}

// FileReceiver receives files sent with Channel.SendFile into a folder: each is written as it
// arrives, checked against its SHA-256, and only then named. It takes every message of the
// channel it receives from, which the application joins. Safe for concurrent use, one receive
// at a time. Close it when done.
type FileReceiver struct {
	mu  sync.Mutex
	ptr *C.SixcastFileReceiver
}

// NewFileReceiver receives into the folder dir, which must exist. It fails with
// ErrInvalidConfig if dir is not a folder.
func NewFileReceiver(dir string, opts FileReceiverOptions) (*FileReceiver, error) {
	if err := checkText(dir); err != nil {
		return nil, err
	}
	text := cString(dir)
	defer text.free()
	var ptr *C.SixcastFileReceiver
	var cError *C.SixcastError
	status := C.sixcast_file_receiver_new(text.ptr, C.uint64_t(opts.MaxSize), C.uint32_t(opts.MaxTransfers), &ptr, &cError)
	if err := check(status, cError); err != nil {
		return nil, err
	}
	receiver := &FileReceiver{ptr: ptr}
	runtime.SetFinalizer(receiver, (*FileReceiver).Close)
	return receiver, nil
}

// Close records what the receiver holds of unfinished files, for a later receiver to resume
// from, and releases it; a Recv in progress returns ErrClosed within a second. Closing twice is
// harmless.
func (r *FileReceiver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr != nil {
		C.sixcast_file_receiver_free(r.ptr)
		r.ptr = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// use runs f with the receiver's handle, or fails with ErrClosed after Close.
func (r *FileReceiver) use(f func(*C.SixcastFileReceiver) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr == nil {
		return &Error{Kind: ErrClosed, Message: "the file receiver is closed"}
	}
	return f(r.ptr)
}

// fileSlice bounds each wait in the C library, so that Recv notices ctx within it. A receiver
// records what it holds each time a wait ends, as it does every second anyway.
const fileSlice = time.Second

// Recv receives from channel until a transfer ends, or until ctx is done, and then returns
// ctx.Err(); what arrived is kept, and resumed by the next Recv or receiver. The wait holds an
// OS thread, in slices of a second. It fails with ErrMalformed when a whole file does not
// match its SHA-256 (it is removed), ErrIo when the folder cannot be written, and ErrClosed
// once the context is closed or the channel or receiver is.
func (r *FileReceiver) Recv(ctx context.Context, channel *Channel) (FileOutcome, error) {
	for {
		if err := ctx.Err(); err != nil {
			return FileOutcome{}, err
		}
		slice := fileSlice
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < slice {
			slice = max(time.Until(deadline), 0)
		}
		var text *C.char
		err := r.use(func(receiver *C.SixcastFileReceiver) error {
			return channel.call(func(ptr *C.SixcastChannel, e **C.SixcastError) uint32 {
				return C.sixcast_file_receiver_recv(receiver, ptr, C.int64_t(slice.Milliseconds()), &text, e)
			})
		})
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			return FileOutcome{}, err
		}
		var outcome FileOutcome
		err = json.Unmarshal([]byte(takeString(text)), &outcome)
		return outcome, err
	}
}

// Stats are the receiver's counters; they wait for a slice of Recv in progress.
func (r *FileReceiver) Stats() (FileStats, error) {
	var stats FileStats
	err := r.use(func(receiver *C.SixcastFileReceiver) error {
		var text *C.char
		var cError *C.SixcastError
		if err := check(C.sixcast_file_receiver_stats_json(receiver, &text, &cError), cError); err != nil {
			return err
		}
		return json.Unmarshal([]byte(takeString(text)), &stats)
	})
	return stats, err
}
