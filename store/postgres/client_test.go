package postgres_test

import (
	"errors"
	"testing"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// TestUnstorableText checks strings PostgreSQL's TEXT cannot hold (NUL,
// invalid UTF-8), which SQLite stores: looked up, they find nothing
// rather than fail the query; as replay keys they are stored exactly.
func TestUnstorableText(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, freshSchema(t))
	t.Cleanup(func() { s.Close() })
	if err := s.CreateClient(ctx, &sigil.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c\x00", "\xff", "c\xff"} {
		if _, err := s.Client(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("Client(%q): %v, want ErrNotFound", id, err)
		}
		if err := s.UpdateClient(ctx, &sigil.Client{ID: id}); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("UpdateClient(%q): %v, want ErrNotFound", id, err)
		}
		if err := s.DeleteClient(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("DeleteClient(%q): %v, want ErrNotFound", id, err)
		}
		if err := s.PromoteKey(ctx, id, time.Now()); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("PromoteKey(%q): %v, want ErrNotFound", id, err)
		}
		if err := s.DeleteKey(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("DeleteKey(%q): %v, want ErrNotFound", id, err)
		}
		// A username is typed by whoever signs in.
		if _, err := s.UserByName(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("UserByName(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.User(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("User(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.Session(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("Session(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.RedeemCode(ctx, id, "c", sigil.Redemption{}); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("RedeemCode(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.RefreshFamily(ctx, id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("RefreshFamily(%q): %v, want ErrNotFound", id, err)
		}
		if err := s.RotateRefresh(ctx, sigil.RefreshRotation{FamilyID: id, NextHash: "n"}); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("RotateRefresh(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.TakePushedRequest(ctx, id, "c"); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("TakePushedRequest(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.Consent(ctx, id, "c"); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("Consent(%q): %v, want ErrNotFound", id, err)
		}
		if cs, err := s.Consents(ctx, id); err != nil || len(cs) != 0 {
			t.Errorf("Consents(%q) = %v, %v; want none", id, cs, err)
		}
		if jtis, err := s.RevokeRefreshFamily(ctx, id); err != nil || len(jtis) != 0 {
			t.Errorf("RevokeRefreshFamily(%q) = %q, %v; want none", id, jtis, err)
		}
		if err := s.DeleteSession(ctx, id); err != nil {
			t.Errorf("DeleteSession(%q): %v", id, err)
		}
		// The client a code or a pushed request is presented by.
		if _, err := s.RedeemCode(ctx, "h", id, sigil.Redemption{}); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("RedeemCode(client %q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.TakePushedRequest(ctx, "h", id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("TakePushedRequest(client %q): %v, want ErrNotFound", id, err)
		}
		if n, err := s.DeleteSessions(ctx, id); err != nil || n != 0 {
			t.Errorf("DeleteSessions(%q) = %d, %v; want 0, nil", id, n, err)
		}
		for _, who := range [][2]string{{id, ""}, {"", id}, {id, "c"}} {
			if jtis, err := s.RevokeRefreshTokens(ctx, who[0], who[1]); err != nil || len(jtis) != 0 {
				t.Errorf("RevokeRefreshTokens(%q, %q) = %q, %v; want none", who[0], who[1], jtis, err)
			}
		}
	}

	late := time.Now().Add(time.Hour)
	if err := s.Revoke(ctx, sigil.Revocation{Kind: sigil.RevokeClient, Value: "c", Cutoff: late, ExpiresAt: late}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []sigil.TokenRef{
		{JTI: "j\x00", ClientID: "c", Subject: "\xff"},
		{JTI: "\xff", ClientID: "c", Subject: "s\x00"},
	} {
		revoked, err := s.Revoked(ctx, ref)
		if err != nil || !revoked {
			t.Errorf("Revoked(%+v) = %v, %v; want true (the client matches)", ref, revoked, err)
		}
	}
	revoked, err := s.Revoked(ctx, sigil.TokenRef{JTI: "j\x00", ClientID: "c\x00", Subject: "\xff"})
	if err != nil || revoked {
		t.Errorf("Revoked(unstorable fields) = %v, %v; want false", revoked, err)
	}

	// "\xff" and U+FFFD (what a lossy conversion would make of it) are
	// distinct keys.
	for _, key := range []string{"k\x00", "\xff", "\uFFFD"} {
		if err := s.MarkJTI(ctx, key, late); err != nil {
			t.Errorf("MarkJTI(%q): %v", key, err)
		}
		if err := s.MarkJTI(ctx, key, late); !errors.Is(err, sigil.ErrReplay) {
			t.Errorf("MarkJTI(%q) again: %v, want ErrReplay", key, err)
		}
	}
	if err := s.MarkJTI(ctx, "k", late); err != nil {
		t.Errorf("MarkJTI(k) after k\\x00: %v", err)
	}
}
