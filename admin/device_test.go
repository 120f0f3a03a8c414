package admin_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/store/sqlite"
)

// TestDeviceGrantClient: the device code grant is a known grant, and it
// carries refresh_token without the authorization code grant.
func TestDeviceGrantClient(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &admin.Service{Store: st}
	c, err := s.CreateClient(ctx, admin.ClientSpec{Name: "cli", AuthMethod: sigil.AuthNone,
		GrantTypes: []string{sigil.GrantDeviceCode, sigil.GrantRefreshToken}, Scope: "openid offline_access"})
	if err != nil {
		t.Fatalf("CreateClient with the device code grant: %v", err)
	}
	got, err := st.Client(ctx, c.ClientID)
	if err != nil || !got.HasGrant(sigil.GrantDeviceCode) || !got.HasGrant(sigil.GrantRefreshToken) {
		t.Errorf("stored client %+v (%v) lacks the grants", got, err)
	}
	if _, err := s.CreateClient(ctx, admin.ClientSpec{Name: "cc", AuthMethod: sigil.AuthNone,
		GrantTypes: []string{sigil.GrantClientCredentials, sigil.GrantRefreshToken}}); err == nil {
		t.Error("refresh_token without a user grant was accepted")
	}
}
