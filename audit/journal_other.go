//go:build !unix

package audit

import (
	"errors"
	"fmt"
	"os"
)

// lockFile refuses: this platform lacks the file lock (and the shared
// mapping) a journal needs, and without a lock two processes could share
// one, so servers here run without a journal and wait for commits.
func lockFile(string) (func() error, error) {
	return nil, fmt.Errorf("audit: journals need file locks: %w", errors.ErrUnsupported)
}

func mapFile(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapFile([]byte) {}

func prefault([]byte) {}
