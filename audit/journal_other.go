//go:build !unix

package audit

import (
	"errors"
	"fmt"
	"os"
)

// lockFile is not implemented here: without a lock two processes could
// share a journal, so servers run without one and wait for commits.
func lockFile(string) (func() error, error) {
	return nil, fmt.Errorf("audit: journals need file locks: %w", errors.ErrUnsupported)
}

func mapFile(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapFile([]byte) {}

func prefault([]byte) {}
