package issuer_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

// codeFamily runs the code flow and returns the token response.
func codeFamily(t *testing.T, n *testNode, c rp) reply {
	t.Helper()
	p := newPKCE()
	resp := newBrowser(t, n).codeFor(c, c.authParams(p, "openid offline_access"), "alice", alicePassword)
	tr := n.redeem(t, c, resp.Get("code"), p.verifier)
	if tr.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", tr.status, tr.body)
	}
	return tr
}

// TestRefreshRevokedFamilyWithinLeeway: an access token issued from a
// family is accepted until exp plus the leeway, so revoking the family
// must revoke it until then too: a family records its access tokens
// beyond their exp.
func TestRefreshRevokedFamilyWithinLeeway(t *testing.T) {
	n := startNode(t, func(cfg *config.Config) {
		cfg.AccessTokenTTL = 2 * time.Second
		cfg.Leeway = 2 * time.Minute
	})
	c := newRP(t, n, "client_secret_basic")
	newUser(t, n, "alice", alicePassword, nil)
	tr := codeFamily(t, n, c)
	rt0 := tr.str(t, "refresh_token")
	r1 := n.refresh(t, c, rt0, nil)
	if r1.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r1.status, r1.body)
	}
	time.Sleep(3500 * time.Millisecond) // past exp of both, within leeway
	at0 := tr.str(t, "access_token")
	if !n.active(t, c.auth(), at0) {
		t.Fatal("precondition: access token past exp but within leeway should introspect active")
	}
	// Theft detected: the spent token is replayed.
	wantError(t, n.refresh(t, c, rt0, nil), http.StatusBadRequest, "invalid_grant")
	for i, at := range []string{at0, r1.str(t, "access_token")} {
		if n.active(t, c.auth(), at) {
			t.Errorf("access token %d of the revoked family still active (past exp, within leeway)", i)
		}
	}
}

// revokeHookStore runs before() once, first thing in RevokeRefreshTokens.
type revokeHookStore struct {
	sigil.Store
	before func()
}

func (s *revokeHookStore) RevokeRefreshTokens(ctx context.Context, userID, clientID string) ([]string, error) {
	if s.before != nil {
		f := s.before
		s.before = nil
		f()
	}
	return s.Store.RevokeRefreshTokens(ctx, userID, clientID)
}

// TestAdminRevokeRacesRotation: admin Revoke by subject writes the
// subject record (cutoff = now), then revokes the refresh families. A
// rotation committed between the two, whose access token's iat falls in
// a later second than the cutoff, is covered by the families' access
// tokens, which Revoke revokes too.
func TestAdminRevokeRacesRotation(t *testing.T) {
	n := startNode(t)
	c := newRP(t, n, "client_secret_basic")
	alice := newUser(t, n, "alice", alicePassword, nil)
	rt := codeFamily(t, n, c).str(t, "refresh_token")

	var raced reply
	core := n.srv.Core
	svc := *core.Admin
	svc.Store = &revokeHookStore{Store: core.Store, before: func() {
		// The record's cutoff second ends; a rotation lands before the
		// families are revoked.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
		raced = n.refresh(t, c, rt, nil)
	}}
	if _, err := svc.Revoke(context.Background(), "", "", alice.ID); err != nil {
		t.Fatal(err)
	}
	if raced.status != http.StatusOK {
		t.Fatalf("raced rotation: %d %s", raced.status, raced.body)
	}
	wantError(t, n.refresh(t, c, raced.str(t, "refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
	if n.active(t, c.auth(), raced.str(t, "access_token")) {
		t.Error("access token from a rotation that raced the subject revocation is still active; RevokeRefreshTokens' JTIs were discarded")
	}
}

// TestDisableRacesCachedRefresh: node b caches alice; a disables her
// through the admin layer (UpdateUser, then Revoke by subject). A refresh
// at b between the two is served from b's cached user, but what it
// issues is dead at once: the refresh token's family is revoked, and so
// is the access token, which the family recorded.
func TestDisableRacesCachedRefresh(t *testing.T) {
	a := startNode(t, func(cfg *config.Config) { cfg.CacheRefresh = time.Minute })
	b := startNode(t, func(cfg *config.Config) {
		cfg.Issuer, cfg.DataDir, cfg.CacheRefresh = a.issuer, a.cfg.DataDir, time.Minute
	})
	c := newRP(t, a, "client_secret_basic")
	alice := newUser(t, a, "alice", alicePassword, nil)
	rt := codeFamily(t, a, c).str(t, "refresh_token")
	r := b.refresh(t, c, rt, nil) // b caches alice
	if r.status != http.StatusOK {
		t.Fatalf("refresh at b: %d %s", r.status, r.body)
	}
	rt = r.str(t, "refresh_token")

	var raced reply
	svc := *a.srv.Core.Admin
	svc.Store = &revokeHookStore{Store: a.srv.Core.Store, before: func() {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
		raced = b.refresh(t, c, rt, nil)
	}}
	disabled := true
	if _, err := svc.UpdateUser(context.Background(), alice.ID, admin.UserUpdate{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if raced.status == http.StatusOK {
		if b.active(t, c.auth(), raced.str(t, "access_token")) {
			t.Error("an access token issued from the cached user survives the disable")
		}
		wantError(t, b.refresh(t, c, raced.str(t, "refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
	}
}
