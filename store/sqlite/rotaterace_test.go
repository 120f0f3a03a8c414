package sqlite

import (
	"testing"

	"github.com/sigil-sts/sigil/store/storetest"
)

// TestRotateRevokeTwoStores: rotations on one store handle race
// revocations on another on the same database; no access token a
// rotation recorded escapes (storetest.RotateRevokeTwoStores).
func TestRotateRevokeTwoStores(t *testing.T) {
	for _, byUser := range []bool{false, true} {
		dir := t.TempDir()
		a, b := openT(t, dir), openT(t, dir)
		storetest.RotateRevokeTwoStores(t, a, b, byUser)
	}
}
