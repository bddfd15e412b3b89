package writeback

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing out f's dirty pages and returns without
// waiting for them.
func startWriteback(f *os.File) error {
	return unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// A written file's name is opened without following a link or waiting on a pipe; errLink
// is what opening a link that way gives.
const openFlags = unix.O_NOFOLLOW | unix.O_NONBLOCK

var errLink error = unix.ELOOP
