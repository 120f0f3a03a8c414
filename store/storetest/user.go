package storetest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sigil "github.com/sigil-sts/sigil"
)

// fullUser returns a user with every field set to a non-zero value, its
// username derived from id. Claims hold only values that survive a JSON
// round trip unchanged.
func fullUser(id string) *sigil.User {
	return &sigil.User{
		ID:           id,
		Username:     "user-" + id,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		Claims: map[string]any{
			"email":          id + "@example.com",
			"email_verified": true,
			"groups":         []any{"admins", "ops"},
			"clearance":      float64(2),
			"address":        map[string]any{"country": "FR", "locality": nil},
		},
		Disabled: true,
	}
}

func mustUser(t *testing.T, s sigil.Store, id string) *sigil.User {
	t.Helper()
	u, err := s.User(t.Context(), id)
	must(t, "User("+id+")", err)
	return u
}

func testUserRoundTrip(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	want := fullUser("u1")
	before := time.Now()
	must(t, "CreateUser", s.CreateUser(ctx, want))
	after := time.Now()
	checkStamp(t, "CreatedAt", want.CreatedAt, before, after)
	if !want.UpdatedAt.Equal(want.CreatedAt) {
		t.Errorf("after create UpdatedAt = %v, CreatedAt = %v; want equal", want.UpdatedAt, want.CreatedAt)
	}
	if diff := cmp.Diff(want, mustUser(t, s, "u1")); diff != "" {
		t.Errorf("User round trip (-want +got):\n%s", diff)
	}
	got, err := s.UserByName(ctx, "user-u1")
	must(t, "UserByName", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UserByName round trip (-want +got):\n%s", diff)
	}

	bare := &sigil.User{ID: "bare", Username: "bare"}
	must(t, "CreateUser(bare)", s.CreateUser(ctx, bare))
	if diff := cmp.Diff(bare, mustUser(t, s, "bare"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("zero-valued User round trip (-want +got):\n%s", diff)
	}
}

// testUserCopies checks that the store keeps no reference to the caller's
// claims and hands out none of its own.
func testUserCopies(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	u := fullUser("u1")
	must(t, "CreateUser", s.CreateUser(ctx, u))
	u.Claims["email"] = "changed"
	u.Claims["groups"].([]any)[0] = "changed"
	got := mustUser(t, s, "u1")
	got.Claims["email_verified"] = false
	got.Claims["address"].(map[string]any)["country"] = "changed"
	if diff := cmp.Diff(fullUser("u1"), mustUser(t, s, "u1"), cmpopts.IgnoreFields(sigil.User{}, "CreatedAt", "UpdatedAt")); diff != "" {
		t.Errorf("stored user changed through aliases (-want +got):\n%s", diff)
	}
}

func testUserConflict(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	first := fullUser("u1")
	must(t, "CreateUser", s.CreateUser(ctx, first))

	sameID := fullUser("u1")
	sameID.Username = "someone-else"
	wantErr(t, "CreateUser(same ID)", s.CreateUser(ctx, sameID), sigil.ErrConflict)
	if !sameID.CreatedAt.IsZero() {
		t.Errorf("failed CreateUser set CreatedAt to %v", sameID.CreatedAt)
	}
	sameName := fullUser("u2")
	sameName.Username = first.Username
	wantErr(t, "CreateUser(same username)", s.CreateUser(ctx, sameName), sigil.ErrConflict)

	if diff := cmp.Diff(first, mustUser(t, s, "u1")); diff != "" {
		t.Errorf("user after conflicting creates (-want +got):\n%s", diff)
	}
	_, err := s.User(ctx, "u2")
	wantErr(t, "User(u2) after its conflicting create", err, sigil.ErrNotFound)
	_, err = s.UserByName(ctx, "someone-else")
	wantErr(t, "UserByName(someone-else) after its conflicting create", err, sigil.ErrNotFound)
}

func testUserNotFound(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, &sigil.User{ID: "present", Username: "Present"}))
	for _, id := range []string{"absent", "Present", "PRESENT", "presen", "present ", ""} {
		u, err := s.User(ctx, id)
		wantErr(t, fmt.Sprintf("User(%q)", id), err, sigil.ErrNotFound)
		if u != nil {
			t.Errorf("User(%q) = %+v, want nil", id, u)
		}
	}
	// Usernames are compared exactly: the admin layer normalises them.
	for _, name := range []string{"absent", "present", "PRESENT", "Presen", "Present ", ""} {
		u, err := s.UserByName(ctx, name)
		wantErr(t, fmt.Sprintf("UserByName(%q)", name), err, sigil.ErrNotFound)
		if u != nil {
			t.Errorf("UserByName(%q) = %+v, want nil", name, u)
		}
	}
	wantErr(t, "UpdateUser(absent)", s.UpdateUser(ctx, &sigil.User{ID: "absent", Username: "absent"}), sigil.ErrNotFound)
	_, err := s.UserByName(ctx, "absent")
	wantErr(t, "UserByName(absent) after UpdateUser", err, sigil.ErrNotFound)
	wantErr(t, "DeleteUser(absent)", s.DeleteUser(ctx, "absent"), sigil.ErrNotFound)
}

func testUsersOrder(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	got, err := s.Users(ctx)
	must(t, "Users(empty)", err)
	if len(got) != 0 {
		t.Fatalf("Users on an empty store = %d users, want 0", len(got))
	}
	// Ordered by username, byte-wise; the IDs run the other way.
	names := []string{"b", "B", "a", "A9", "A10", "_x", "aa", "a-b", "é"}
	var want []*sigil.User
	for i, name := range names {
		u := fullUser(fmt.Sprintf("id-%02d", len(names)-i))
		u.Username = name
		must(t, "CreateUser", s.CreateUser(ctx, u))
		want = append(want, u)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Username < want[j].Username })
	got, err = s.Users(ctx)
	must(t, "Users", err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Users (-want +got):\n%s", diff)
	}
}

func testUserUpdate(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	orig := fullUser("u1")
	must(t, "CreateUser", s.CreateUser(ctx, orig))
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u2")))

	upd := &sigil.User{
		ID:       "u1",
		Username: "renamed",
		Claims:   map[string]any{"only": "this"},
		// The caller's timestamps are ignored.
		CreatedAt: base,
		UpdatedAt: base,
	}
	before := time.Now()
	must(t, "UpdateUser", s.UpdateUser(ctx, upd))
	after := time.Now()
	if !upd.CreatedAt.Equal(orig.CreatedAt) {
		t.Errorf("after update CreatedAt = %v, want the original %v", upd.CreatedAt, orig.CreatedAt)
	}
	checkStamp(t, "UpdatedAt", upd.UpdatedAt, before, after)
	if upd.UpdatedAt.Before(orig.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", orig.UpdatedAt, upd.UpdatedAt)
	}
	if diff := cmp.Diff(upd, mustUser(t, s, "u1"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("User after update (-want +got):\n%s", diff)
	}
	got, err := s.UserByName(ctx, "renamed")
	must(t, "UserByName(renamed)", err)
	if got.ID != "u1" {
		t.Errorf("UserByName(renamed).ID = %q, want u1", got.ID)
	}
	// The old username is free again.
	_, err = s.UserByName(ctx, orig.Username)
	wantErr(t, "UserByName(old username)", err, sigil.ErrNotFound)
	must(t, "CreateUser(old username)", s.CreateUser(ctx, &sigil.User{ID: "u3", Username: orig.Username}))

	// Taking another user's username is a conflict that changes nothing.
	taken := fullUser("u1")
	taken.Username = "user-u2"
	wantErr(t, "UpdateUser(taken username)", s.UpdateUser(ctx, taken), sigil.ErrConflict)
	if diff := cmp.Diff(upd, mustUser(t, s, "u1"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("User after conflicting update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fullUser("u2"), mustUser(t, s, "u2"), cmpopts.IgnoreFields(sigil.User{}, "CreatedAt", "UpdatedAt")); diff != "" {
		t.Errorf("update changed another user (-want +got):\n%s", diff)
	}
	// Keeping one's own username is no conflict.
	same := mustUser(t, s, "u1")
	same.Disabled = true
	must(t, "UpdateUser(same username)", s.UpdateUser(ctx, same))
	if !mustUser(t, s, "u1").Disabled {
		t.Error("UpdateUser did not store Disabled")
	}
}

// testUserDelete checks that DeleteUser takes the user's sessions,
// consents and refresh families with it, and nobody else's.
func testUserDelete(t *testing.T, s sigil.Store) {
	ctx := t.Context()
	live := fromNow(time.Hour)
	for _, id := range []string{"u1", "u2"} {
		must(t, "CreateUser", s.CreateUser(ctx, fullUser(id)))
		must(t, "CreateSession", s.CreateSession(ctx, &sigil.Session{ID: "sess-" + id, UserID: id, AuthTime: base, ExpiresAt: live}))
		for _, client := range []string{"c1", "c2"} {
			must(t, "SaveConsent", s.SaveConsent(ctx, &sigil.Consent{UserID: id, ClientID: client, Scopes: []string{"openid"}, GrantedAt: base}))
			f := fullFamily("fam-" + id + "-" + client)
			f.UserID, f.ClientID = id, client
			createFamily(t, s, f)
		}
	}
	must(t, "DeleteUser(u1)", s.DeleteUser(ctx, "u1"))

	_, err := s.User(ctx, "u1")
	wantErr(t, "User(u1) after delete", err, sigil.ErrNotFound)
	_, err = s.UserByName(ctx, "user-u1")
	wantErr(t, "UserByName(user-u1) after delete", err, sigil.ErrNotFound)
	_, err = s.Session(ctx, "sess-u1")
	wantErr(t, "Session of a deleted user", err, sigil.ErrNotFound)
	_, err = s.Consent(ctx, "u1", "c1")
	wantErr(t, "Consent of a deleted user", err, sigil.ErrNotFound)
	cs, err := s.Consents(ctx, "u1")
	must(t, "Consents(u1)", err)
	if len(cs) != 0 {
		t.Errorf("Consents of a deleted user = %d consents, want 0", len(cs))
	}
	for _, client := range []string{"c1", "c2"} {
		wantNoFamily(t, s, "RefreshFamily of a deleted user", "fam-u1-"+client)
	}
	wantErr(t, "DeleteUser(u1) again", s.DeleteUser(ctx, "u1"), sigil.ErrNotFound)

	// u2 keeps everything.
	mustUser(t, s, "u2")
	if _, err := s.Session(ctx, "sess-u2"); err != nil {
		t.Errorf("Session of the other user: %v", err)
	}
	if cs, err := s.Consents(ctx, "u2"); err != nil || len(cs) != 2 {
		t.Errorf("Consents of the other user = %d consents, %v; want 2", len(cs), err)
	}
	for _, client := range []string{"c1", "c2"} {
		if _, err := s.RefreshFamily(ctx, "fam-u2-"+client); err != nil {
			t.Errorf("RefreshFamily of the other user: %v", err)
		}
	}
	revokeFamily(t, s, "fam-u2-c1", "jti-fam-u2-c1")
	// The ID and the username are free again.
	must(t, "CreateUser(u1) again", s.CreateUser(ctx, fullUser("u1")))
}
