package issuer_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/config"
)

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	kid, _ := header(t, tok)["kid"].(string)
	if kid == "" {
		t.Fatal("token has no kid")
	}
	return kid
}

func (n *testNode) jwksKIDs(t testing.TB) map[string]string {
	t.Helper()
	set := n.jwks(t)
	out := map[string]string{}
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		alg, _ := k.Algorithm()
		out[kid] = alg.String()
	}
	return out
}

func keyState(t testing.TB, n *testNode, kid string) string {
	t.Helper()
	ks, err := n.admin().ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k.KID == kid {
			return k.State
		}
	}
	return ""
}

// TestKeyRotation: tokens signed before a rotation keep verifying until
// they expire; tokens after it carry the new kid; both appear in JWKS.
func TestKeyRotation(t *testing.T) {
	n := startNode(t)
	c := n.newClient(t, admin.ClientSpec{})
	a := n.token(t, c, nil)
	oldKID := kidOf(t, a)

	k, err := n.admin().RotateKey(context.Background(), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if k.KID == oldKID || k.Alg != "ES256" {
		t.Fatalf("rotated key %+v", k)
	}
	var b string
	eventually(t, 5*time.Second, "tokens signed by the new key", func() bool {
		b = n.token(t, c, nil)
		return kidOf(t, b) == k.KID
	})

	t.Run("new-kid", func(t *testing.T) {
		if got := kidOf(t, b); got != k.KID {
			t.Errorf("kid = %s, want %s", got, k.KID)
		}
	})
	t.Run("both-in-JWKS", func(t *testing.T) {
		kids := n.jwksKIDs(t)
		if kids[oldKID] != "ES256" || kids[k.KID] != "ES256" {
			t.Errorf("JWKS kids %v, want %s and %s", kids, oldKID, k.KID)
		}
	})
	t.Run("states", func(t *testing.T) {
		if s := keyState(t, n, oldKID); s != "retired" {
			t.Errorf("old key state %q, want retired", s)
		}
		if s := keyState(t, n, k.KID); s != "active" {
			t.Errorf("new key state %q, want active", s)
		}
	})
	t.Run("old-token-still-valid", func(t *testing.T) {
		if !n.active(t, basic(c), a) {
			t.Error("token signed before the rotation is inactive")
		}
		n.verifyJWX(t, a)
	})
	t.Run("new-token-valid", func(t *testing.T) {
		if !n.active(t, basic(c), b) {
			t.Error("token signed after the rotation is inactive")
		}
		n.verifyJWX(t, b)
	})
	t.Run("old-token-valid-after-restart", func(t *testing.T) {
		n.restart()
		if !n.active(t, basic(c), a) {
			t.Error("pre-rotation token inactive after restart")
		}
		if got := kidOf(t, n.token(t, c, nil)); got != k.KID {
			t.Errorf("after restart kid = %s, want %s", got, k.KID)
		}
	})
	t.Run("rotate-RS256-leaves-access-tokens", func(t *testing.T) {
		rk, err := n.admin().RotateKey(context.Background(), "RS256")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the RS256 key active", func() bool { return keyState(t, n, rk.KID) == "active" })
		if got := kidOf(t, n.token(t, c, nil)); got != k.KID {
			t.Errorf("access tokens switched to kid %s", got)
		}
		if n.jwksKIDs(t)[rk.KID] != "RS256" {
			t.Error("new RS256 key not in JWKS")
		}
	})
}

// TestKeyPrepublish: with a pre-publication delay, a rotated key is in
// JWKS at once but does not sign yet.
func TestKeyPrepublish(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.KeysPrepublish = time.Hour })
	c := n.newClient(t, admin.ClientSpec{})
	oldKID := kidOf(t, n.token(t, c, nil))
	k, err := n.admin().RotateKey(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if k.State != "next" || k.Alg != "ES256" {
		t.Errorf("rotated key %+v, want state next, alg ES256", k)
	}
	// Run the refresh the background loop runs, instead of waiting for it:
	// it must not promote a key before its delay.
	if err := n.srv.Core.Keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kids := n.jwksKIDs(t); kids[k.KID] != "ES256" || kids[oldKID] != "ES256" {
		t.Errorf("JWKS kids %v, want the next key %s and the active %s", kids, k.KID, oldKID)
	}
	if got := kidOf(t, n.token(t, c, nil)); got != oldKID {
		t.Errorf("kid = %s, want the old %s until the delay passes", got, oldKID)
	}
	if s := keyState(t, n, k.KID); s != "next" {
		t.Errorf("state %q, want next", s)
	}
	r := n.get(t, "/.well-known/jwks.json")
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300, must-revalidate" {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	// A restart does not shortcut the delay either.
	n.restart()
	if got := kidOf(t, n.token(t, c, nil)); got != oldKID {
		t.Errorf("after restart kid = %s, want %s", got, oldKID)
	}
}

// TestRestart: clients, keys, revocations and seen assertion jtis survive
// a restart on the same data directory.
func TestRestart(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	c := n.newClient(t, admin.ClientSpec{Scope: "read", Claims: map[string]any{"team": "blue"}})
	sub := n.newClient(t, admin.ClientSpec{})
	key := newClientKey(t, "ES256", "k1")
	jc := n.jwtClient(t, key)

	kept := n.token(t, c, nil)
	revoked := n.token(t, c, nil)
	if r := n.postForm(t, "/revoke", url.Values{"token": {revoked}}, basic(c)); r.status != http.StatusOK {
		t.Fatalf("revoke: %d", r.status)
	}
	subTok := n.token(t, sub, nil)
	if _, err := n.admin().Revoke(ctx, "", "", sub.ClientID); err != nil {
		t.Fatal(err)
	}
	used := key.sign(t, assertionClaims(jc.ClientID, n.url("/token")), nil)
	if r := n.postForm(t, "/token", assertionForm(used, jc.ClientID), auth{}); r.status != http.StatusOK {
		t.Fatalf("assertion: %d %s", r.status, r.body)
	}
	kid := kidOf(t, kept)
	jwksBefore := n.get(t, "/.well-known/jwks.json").body
	adminToken := n.srv.AdminToken.Reveal()

	n.restart()

	t.Run("clients", func(t *testing.T) {
		cs, err := n.admin().Clients(ctx)
		if err != nil || len(cs) != 3 {
			t.Fatalf("clients after restart: %d, %v", len(cs), err)
		}
		tok := n.token(t, c, nil)
		if m := claims(t, tok); m["team"] != "blue" {
			t.Errorf("claims after restart %v", m)
		}
	})
	t.Run("keys", func(t *testing.T) {
		if got := kidOf(t, n.token(t, c, nil)); got != kid {
			t.Errorf("kid after restart %s, want %s", got, kid)
		}
		if got := n.get(t, "/.well-known/jwks.json").body; string(got) != string(jwksBefore) {
			t.Errorf("JWKS changed across restart:\n%s\n%s", jwksBefore, got)
		}
		if !n.active(t, basic(c), kept) {
			t.Error("token from before the restart is inactive")
		}
		n.verifyJWX(t, kept)
	})
	t.Run("revocations", func(t *testing.T) {
		if n.active(t, basic(c), revoked) {
			t.Error("RFC 7009 revocation lost")
		}
		if n.active(t, basic(sub), subTok) {
			t.Error("subject revocation lost")
		}
	})
	t.Run("assertion-jti", func(t *testing.T) {
		wantError(t, n.postForm(t, "/token", assertionForm(used, jc.ClientID), auth{}), 401, "invalid_client")
	})
	t.Run("admin-token", func(t *testing.T) {
		if n.srv.AdminToken.Reveal() != adminToken {
			t.Error("admin token changed across restart")
		}
	})
	t.Run("readyz", func(t *testing.T) {
		if r := n.get(t, "/readyz"); r.status != http.StatusOK {
			t.Errorf("readyz %d", r.status)
		}
		if r := n.get(t, "/healthz"); r.status != http.StatusOK {
			t.Errorf("healthz %d", r.status)
		}
	})
}
