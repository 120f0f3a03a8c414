package admin_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/password"
)

// storedUser reads a user straight from the node's store, password hash
// included.
func (n *node) storedUser(t *testing.T, id string) *sigil.User {
	t.Helper()
	u, err := n.srv.Core.Store.User(context.Background(), id)
	if err != nil {
		t.Fatalf("user %s in the store: %v", id, err)
	}
	return u
}

func (n *node) createUser(t *testing.T, body map[string]any) admin.UserInfo {
	t.Helper()
	r := n.call(t, "POST", "/admin/v1/users", body)
	if r.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	var u admin.UserInfo
	r.decode(t, &u)
	return u
}

func TestAdminUsers(t *testing.T) {
	n := startNode(t)
	const pw = "correct horse battery staple"
	r := n.call(t, "POST", "/admin/v1/users", map[string]any{
		"username": "Alice@Example.com", "password": pw,
		"claims": map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"staff"}, "department": "finance"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var alice admin.UserInfo
	r.decode(t, &alice)
	noSecrets := func(t *testing.T, body []byte) {
		t.Helper()
		for _, s := range []string{pw, "argon2", "password"} {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("response holds %q: %s", s, body)
			}
		}
	}

	t.Run("create", func(t *testing.T) {
		noSecrets(t, r.body)
		if len(alice.ID) != 32 || strings.Trim(alice.ID, "0123456789abcdef") != "" {
			t.Errorf("id %q is not 32 lower-case hex digits", alice.ID)
		}
		if alice.Username != "alice@example.com" {
			t.Errorf("username %q, want it lower-cased", alice.Username)
		}
		if alice.Disabled || alice.Claims["email"] != "alice@example.com" || alice.Claims["email_verified"] != true {
			t.Errorf("user %+v", alice)
		}
		var m map[string]any
		r.decode(t, &m)
		for _, k := range []string{"created_at", "updated_at"} {
			s, _ := m[k].(string)
			if ts, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") || time.Since(ts) > time.Minute {
				t.Errorf("%s %q is not a recent RFC 3339 UTC time", k, s)
			}
		}
		if _, ok := m["disabled"]; !ok {
			t.Error("no disabled member")
		}
		// The store holds an argon2id hash of exactly the password.
		u := n.storedUser(t, alice.ID)
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$") {
			t.Fatalf("stored hash %q", u.PasswordHash)
		}
		if ok, rehash, err := password.Verify(u.PasswordHash, pw); !ok || rehash || err != nil {
			t.Errorf("stored hash: Verify = %v, %v, %v", ok, rehash, err)
		}
	})
	t.Run("get", func(t *testing.T) {
		for _, key := range []string{alice.ID, "alice@example.com", "ALICE@example.COM"} {
			r := n.call(t, "GET", "/admin/v1/users/"+key, nil)
			if r.status != http.StatusOK {
				t.Fatalf("get %s: %d %s", key, r.status, r.body)
			}
			noSecrets(t, r.body)
			var got admin.UserInfo
			r.decode(t, &got)
			if diff := cmp.Diff(alice, got); diff != "" {
				t.Errorf("get %s (-created +got):\n%s", key, diff)
			}
		}
		wantAPIError(t, n.call(t, "GET", "/admin/v1/users/nobody", nil), http.StatusNotFound, "not_found")
	})
	t.Run("list", func(t *testing.T) {
		n.createUser(t, map[string]any{"username": "bob", "password": "bob's password"})
		r := n.call(t, "GET", "/admin/v1/users", nil)
		var list []admin.UserInfo
		r.decode(t, &list)
		if r.status != http.StatusOK || len(list) != 2 {
			t.Fatalf("status %d, %d users", r.status, len(list))
		}
		if list[0].Username != "alice@example.com" || list[1].Username != "bob" {
			t.Errorf("users %q, %q: want them ordered by username", list[0].Username, list[1].Username)
		}
		noSecrets(t, r.body)
	})
	t.Run("conflict", func(t *testing.T) {
		wantAPIError(t, n.call(t, "POST", "/admin/v1/users", map[string]any{"username": "BOB", "password": "another password"}),
			http.StatusConflict, "conflict")
		wantAPIError(t, n.call(t, "PATCH", "/admin/v1/users/"+alice.ID, map[string]any{"username": "Bob"}),
			http.StatusConflict, "conflict")
	})
	t.Run("update", func(t *testing.T) {
		r := n.call(t, "PATCH", "/admin/v1/users/alice@example.com", map[string]any{"claims": map[string]any{"name": "Alice A."}})
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var u admin.UserInfo
		r.decode(t, &u)
		if diff := cmp.Diff(map[string]any{"name": "Alice A."}, u.Claims); diff != "" {
			t.Errorf("claims are not replaced as a whole (-want +got):\n%s", diff)
		}
		if u.Username != alice.Username || u.Disabled {
			t.Errorf("fields not named changed: %+v", u)
		}
		r = n.call(t, "PATCH", "/admin/v1/users/"+alice.ID, map[string]any{"username": "Alice2", "disabled": true})
		u = admin.UserInfo{} // decoding into a map merges
		r.decode(t, &u)
		if r.status != http.StatusOK || u.Username != "alice2" || !u.Disabled || u.Claims["name"] != "Alice A." {
			t.Errorf("status %d: %+v", r.status, u)
		}
		wantAPIError(t, n.call(t, "GET", "/admin/v1/users/alice@example.com", nil), http.StatusNotFound, "not_found")
		r = n.call(t, "PATCH", "/admin/v1/users/alice2", map[string]any{"disabled": false, "claims": map[string]any{}})
		u = admin.UserInfo{}
		r.decode(t, &u)
		if r.status != http.StatusOK || u.Disabled || len(u.Claims) != 0 || u.ID != alice.ID {
			t.Errorf("status %d: %+v", r.status, u)
		}
		if !bytes.Contains(r.body, []byte(`"claims":{}`)) {
			t.Errorf("no claims show as {}: %s", r.body)
		}
		// Disabling revoked the tokens issued for the user until then.
		revoked, err := n.srv.Core.Store.Revoked(context.Background(), sigil.TokenRef{JTI: "x", Subject: alice.ID, IssuedAt: time.Now().Add(-time.Minute)})
		if err != nil || !revoked {
			t.Errorf("a token issued for the user before they were disabled is not revoked (%v)", err)
		}
		wantAPIError(t, n.call(t, "PATCH", "/admin/v1/users/nobody", map[string]any{"disabled": true}), http.StatusNotFound, "not_found")
	})
	t.Run("set-password", func(t *testing.T) {
		before := n.storedUser(t, alice.ID).PasswordHash
		r := n.call(t, "POST", "/admin/v1/users/alice2/password", map[string]any{"password": "a new passphrase"})
		if r.status != http.StatusNoContent {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		after := n.storedUser(t, alice.ID).PasswordHash
		if after == before {
			t.Fatal("the stored hash did not change")
		}
		if ok, _, _ := password.Verify(after, "a new passphrase"); !ok {
			t.Error("the new password does not verify")
		}
		if ok, _, _ := password.Verify(after, pw); ok {
			t.Error("the old password still verifies")
		}
		wantAPIError(t, n.call(t, "POST", "/admin/v1/users/alice2/password", map[string]any{"password": "short"}), http.StatusBadRequest, "invalid_request")
		wantAPIError(t, n.call(t, "POST", "/admin/v1/users/alice2/password", map[string]any{"pw": "a new passphrase"}), http.StatusBadRequest, "invalid_request")
		wantAPIError(t, n.call(t, "POST", "/admin/v1/users/nobody/password", map[string]any{"password": "a new passphrase"}), http.StatusNotFound, "not_found")
		if n.storedUser(t, alice.ID).PasswordHash != after {
			t.Error("a refused request changed the password")
		}
	})
	t.Run("delete", func(t *testing.T) {
		cutoff := time.Now()
		if r := n.call(t, "DELETE", "/admin/v1/users/"+alice.ID, nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		wantAPIError(t, n.call(t, "GET", "/admin/v1/users/"+alice.ID, nil), http.StatusNotFound, "not_found")
		wantAPIError(t, n.call(t, "DELETE", "/admin/v1/users/"+alice.ID, nil), http.StatusNotFound, "not_found")
		// Tokens issued for the user up to the deletion are revoked.
		revoked, err := n.srv.Core.Store.Revoked(context.Background(), sigil.TokenRef{JTI: "y", Subject: alice.ID, IssuedAt: cutoff})
		if err != nil || !revoked {
			t.Errorf("a token issued for the deleted user is not revoked (%v)", err)
		}
		// By username too.
		if r := n.call(t, "DELETE", "/admin/v1/users/BOB", nil); r.status != http.StatusNoContent {
			t.Fatalf("delete by username: %d %s", r.status, r.body)
		}
		var list []admin.UserInfo
		n.call(t, "GET", "/admin/v1/users", nil).decode(t, &list)
		if len(list) != 0 {
			t.Errorf("%d users left", len(list))
		}
	})
	t.Run("audit", func(t *testing.T) {
		_, rs := n.entries(t)
		var events []string
		for _, r := range rs {
			if r.Subject != alice.ID {
				continue
			}
			events = append(events, string(r.Event))
		}
		want := []string{"user.created", "user.updated", "user.updated", "token.revoked", "user.updated", "user.password_set", "user.deleted", "token.revoked"}
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("audit events for the user (-want +got):\n%s", diff)
		}
		i := slices.IndexFunc(rs, func(r *audit.Record) bool { return r.Event == audit.UserUpdated && r.Detail["previous_username"] != "" })
		if i < 0 || rs[i].Detail["previous_username"] != "alice@example.com" || rs[i].Detail["username"] != "alice2" ||
			rs[i].Detail["changed"] != "username disabled" || rs[i].Detail["disabled"] != "true" {
			t.Errorf("rename record: %+v", rs[max(i, 0)])
		}
		es, _ := n.entries(t)
		for _, e := range es {
			for _, s := range []string{pw, "a new passphrase", "argon2"} {
				if bytes.Contains(e.Body, []byte(s)) {
					t.Errorf("audit record %d holds %q", e.Seq, s)
				}
			}
		}
	})
}

func TestAdminUserValidation(t *testing.T) {
	n := startNode(t)
	const pw = "long enough"
	create := func(username string) map[string]any { return map[string]any{"username": username, "password": pw} }
	withClaims := func(claims map[string]any) map[string]any {
		return map[string]any{"username": "carol", "password": pw, "claims": claims}
	}
	cases := []struct {
		name string
		body any
	}{
		{"no-username", map[string]any{"password": pw}},
		{"username-empty", create("")},
		{"username-too-long", create(strings.Repeat("a", 65))},
		{"username-space", create("carol smith")},
		{"username-unicode", create("carolé")},
		{"username-look-alike", create("cаrol")},       // Cyrillic а
		{"username-kelvin-sign", create("\u212Aarol")}, // lower-cases to "k"
		{"username-slash", create("carol/admin")},
		{"username-leading-dash", create("-carol")},
		{"username-leading-dot", create(".carol")},
		{"username-like-an-id", create("0123456789ABCDEF0123456789abcdef")},
		{"no-password", map[string]any{"username": "carol"}},
		{"password-short", map[string]any{"username": "carol", "password": "1234567"}},
		{"password-short-runes", map[string]any{"username": "carol", "password": "ééééééé"}},
		{"password-too-long", map[string]any{"username": "carol", "password": strings.Repeat("x", 1025)}},
		{"password-hash-field", map[string]any{"username": "carol", "password": pw, "password_hash": "$argon2id$"}},
		{"id-field", map[string]any{"username": "carol", "password": pw, "id": "0123456789abcdef0123456789abcdef"}},
		{"claims-not-object", map[string]any{"username": "carol", "password": pw, "claims": []string{"x"}}},
		{"email-number", withClaims(map[string]any{"email": 1})},
		{"email-verified-string", withClaims(map[string]any{"email_verified": "true"})},
		{"groups-string", withClaims(map[string]any{"groups": "staff"})},
		{"groups-mixed", withClaims(map[string]any{"groups": []any{"staff", 1}})},
		{"name-bool", withClaims(map[string]any{"name": true})},
		{"phone-verified-string", withClaims(map[string]any{"phone_number_verified": "yes"})},
		{"address-string", withClaims(map[string]any{"address": "1 Main St"})},
		{"updated-at-string", withClaims(map[string]any{"updated_at": "yesterday"})},
		{"introspection-member", withClaims(map[string]any{"username": "root"})},
		{"empty-claim-name", withClaims(map[string]any{"": "x"})},
		{"registered-case-folded", withClaims(map[string]any{"SUB": "admin"})},
		{"claim-nul", withClaims(map[string]any{"department": "eng\x00"})},
		{"claim-nested-nul", withClaims(map[string]any{"groups": []any{"staff\x00"}})},
		{"claim-name-nul", withClaims(map[string]any{"dept\x00": "eng"})},
		{"not-json", `{"username":`},
		{"trailing-data", `{"username":"carol","password":"long enough"} {}`},
	}
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "cnf", "act",
		"auth_time", "nonce", "acr", "amr", "azp", "at_hash", "sid", "status"} {
		cases = append(cases, struct {
			name string
			body any
		}{"registered-" + c, withClaims(map[string]any{c: "x"})})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError(t, n.call(t, "POST", "/admin/v1/users", tc.body), http.StatusBadRequest, "invalid_request")
		})
	}
	t.Run("nothing-created", func(t *testing.T) {
		var list []admin.UserInfo
		n.call(t, "GET", "/admin/v1/users", nil).decode(t, &list)
		if len(list) != 0 {
			t.Errorf("%d users created by refused requests", len(list))
		}
	})
	t.Run("accepted", func(t *testing.T) {
		for _, name := range []string{"a", strings.Repeat("z", 64), "carol.smith_2-x@example.org", "0123456789abcdef0123456789abcde"} {
			n.createUser(t, map[string]any{"username": name, "password": "ééééééééé"})
		}
		n.createUser(t, map[string]any{"username": "dave", "password": strings.Repeat("x", 1024), "disabled": true,
			"claims": map[string]any{"name": "Dave", "address": map[string]any{"locality": "Paris"}, "updated_at": 1700000000, "groups": []string{}, "level": 3}})
	})
	t.Run("update", func(t *testing.T) {
		for _, body := range []any{
			map[string]any{"username": "Bad Name"},
			map[string]any{"username": ""},
			map[string]any{"claims": map[string]any{"sub": "x"}},
			map[string]any{"claims": map[string]any{"email_verified": 1}},
			map[string]any{"password": pw},
			map[string]any{"disabled": "yes"},
		} {
			wantAPIError(t, n.call(t, "PATCH", "/admin/v1/users/dave", body), http.StatusBadRequest, "invalid_request")
		}
		var u admin.UserInfo
		n.call(t, "GET", "/admin/v1/users/dave", nil).decode(t, &u)
		if u.Username != "dave" || !u.Disabled || u.Claims["name"] != "Dave" {
			t.Errorf("refused updates changed the user: %+v", u)
		}
	})
}

func TestAdminUserAuth(t *testing.T) {
	n := startNode(t)
	u := n.createUser(t, map[string]any{"username": "erin", "password": "erin's password"})
	for _, p := range []struct{ method, path string }{
		{"GET", "/admin/v1/users"}, {"POST", "/admin/v1/users"}, {"GET", "/admin/v1/users/" + u.ID},
		{"PATCH", "/admin/v1/users/" + u.ID}, {"DELETE", "/admin/v1/users/" + u.ID}, {"POST", "/admin/v1/users/" + u.ID + "/password"},
	} {
		r := n.callAs(t, "Bearer "+strings.Repeat("x", len(n.token)), p.method, p.path, nil)
		wantAPIError(t, r, http.StatusUnauthorized, "unauthorized")
	}
	if r := n.call(t, "GET", "/admin/v1/users/erin", nil); r.status != http.StatusOK {
		t.Errorf("the user is gone after unauthorized requests: %d", r.status)
	}
}
