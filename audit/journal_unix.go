//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// lockFile takes an exclusive, non-blocking lock on the file at path
// (created if needed); the kernel releases it if the process dies.
func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: journal lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrJournalLocked
		}
		return nil, fmt.Errorf("audit: journal lock: %w", err)
	}
	return f.Close, nil
}

// mapFile maps the first size bytes of f, shared: writes to the mapping
// are writes to the file.
func mapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func unmapFile(m []byte) { syscall.Munmap(m) }

// madvPopulateWrite is Linux's MADV_POPULATE_WRITE (5.14 and later).
const madvPopulateWrite = 23

// prefault makes the pages of m writable in advance (MADV_POPULATE_WRITE),
// so the copies into them fault no more. It changes no byte, so it may run
// while other goroutines write m. Kernels without it return an error,
// which costs nothing but the faults it would have saved.
func prefault(m []byte) {
	if len(m) == 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), madvPopulateWrite)
}
