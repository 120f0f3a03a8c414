package audit_test

import (
	"context"
	"testing"

	"github.com/sigil-sts/sigil/audit"
)

// TestCloseBeforeStart: closing a writer that never started is a no-op,
// not a panic, and it refuses records afterwards.
func TestCloseBeforeStart(t *testing.T) {
	w := &audit.Writer{}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := w.Enqueue(context.Background(), audit.Record{Event: audit.TokenIssued}); err != audit.ErrClosed {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}
}
