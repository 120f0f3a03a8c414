package cedar

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigil-sts/sigil/policy"
)

// exampleCase is one request against an example policy set and the
// decision it must get.
type exampleCase struct {
	name   string
	req    policy.Request
	allow  bool
	reason string // the deciding policy, when one decides
}

func runExample(t *testing.T, dir string, cases []exampleCase) {
	t.Helper()
	e, err := Load(os.DirFS(filepath.Join("..", "..", "examples", "policies", dir)), Options{})
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Evaluate(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != c.allow || len(d.Errors) != 0 {
				t.Fatalf("decision %+v, want allow=%v without errors", d, c.allow)
			}
			if c.reason != "" {
				found := false
				for _, r := range d.Reasons {
					found = found || r.Policy == c.reason
				}
				if !found {
					t.Errorf("reasons %+v, want %q among them", d.Reasons, c.reason)
				}
			}
		})
	}
}

// req builds a request; props are subject, resource and context
// properties in that order, any of them nil.
func req(subjectType, subjectID, action, resourceType, resourceID string, props ...map[string]any) policy.Request {
	r := policy.Request{
		Subject:  policy.Subject{Type: subjectType, ID: subjectID},
		Action:   policy.Action{Name: action},
		Resource: policy.Resource{Type: resourceType, ID: resourceID},
	}
	for i, p := range props {
		switch i {
		case 0:
			r.Subject.Properties = p
		case 1:
			r.Resource.Properties = p
		case 2:
			r.Context = p
		}
	}
	return r
}

type claims = map[string]any

func TestExampleScopes(t *testing.T) {
	const aud = "https://files.example.com"
	tok := func(r policy.Request, c claims) policy.Request { r.Token = c; return r }
	read := req("user", "alice", "read", "file", "report.pdf")
	write := req("user", "alice", "update", "record", "r-1")
	runExample(t, "scopes", []exampleCase{
		{"read:files reads a file", tok(read, claims{"aud": aud, "scope": "openid read:files"}), true, "read-files-scope"},
		{"audience as an array", tok(read, claims{"aud": []any{aud}, "scope": "read:files"}), true, "read-files-scope"},
		{"a longer scope is not read:files", tok(read, claims{"aud": aud, "scope": "read:filesystem"}), false, ""},
		{"no token", read, false, ""},
		{"no scope claim", tok(read, claims{"aud": aud}), false, ""},
		{"write:records updates a record", tok(write, claims{"aud": aud, "scope": "write:records"}), true, "write-records-scope"},
		{"read:files does not write", tok(write, claims{"aud": aud, "scope": "read:files"}), false, ""},
		{"write:records reads records", tok(req("user", "alice", "read", "record", "r-1"), claims{"aud": aud, "scope": "write:records"}), true, "read-records-scope"},
		{"another audience", tok(read, claims{"aud": "https://mail.example.com", "scope": "read:files"}), false, "audience-must-match"},
	})
}

func TestExampleABAC(t *testing.T) {
	eng := func(clearance int) map[string]any {
		return map[string]any{"department": "engineering", "clearance": clearance}
	}
	doc := func(dept string, class int, extra ...any) map[string]any {
		m := map[string]any{"department": dept, "classification": class}
		if len(extra) == 2 {
			m[extra[0].(string)] = extra[1]
		}
		return m
	}
	runExample(t, "abac", []exampleCase{
		{"same department, enough clearance", req("person", "ana", "read", "document", "d1", eng(3), doc("engineering", 3)), true, "same-department-within-clearance"},
		{"clearance too low", req("person", "ana", "read", "document", "d1", eng(2), doc("engineering", 3)), false, ""},
		{"other department", req("person", "ana", "read", "document", "d1", eng(5), doc("finance", 1)), false, ""},
		{"edit with mfa", req("person", "ana", "edit", "document", "d1", eng(4), doc("engineering", 3), map[string]any{"mfa": true}), true, "edit-with-mfa"},
		{"edit without mfa", req("person", "ana", "edit", "document", "d1", eng(4), doc("engineering", 3)), false, ""},
		{"edit needs more than equal clearance", req("person", "ana", "edit", "document", "d1", eng(3), doc("engineering", 3), map[string]any{"mfa": true}), false, ""},
		{"embargo beats clearance", req("person", "ana", "read", "document", "d1", eng(9), doc("engineering", 1, "embargoed", true)), false, "embargo"},
		// The schema is enforced on the request: an unknown action is a
		// deny with an error, tested in engine_test.go.
	})
}

func TestExampleDelegation(t *testing.T) {
	call := func(user, tool string, c claims) policy.Request {
		r := req("user", user, "call_tool", "tool", tool)
		r.Token = c
		return r
	}
	agent := func(user, agentID string) claims { return claims{"sub": user, "act": map[string]any{"sub": agentID}} }
	runExample(t, "delegation", []exampleCase{
		{"person uses own tool", call("alice", "calendar", claims{"sub": "alice"}), true, "person-uses-own-tools"},
		{"person lacks the tool", call("alice", "email", claims{"sub": "alice"}), false, ""},
		{"agent within the person's tools and its list", call("alice", "search", agent("alice", "agent-7")), true, "person-uses-own-tools"},
		{"agent beyond its list", call("alice", "calendar", agent("alice", "agent-7")), false, "agent-only-listed-tools"},
		{"agent listed but the person lacks the tool", call("alice", "email", agent("alice", "agent-7")), false, ""},
		{"another person's agent use", call("bob", "email", agent("bob", "agent-7")), true, "person-uses-own-tools"},
		{"act without sub", call("alice", "search", claims{"sub": "alice", "act": map[string]any{"iss": "x"}}), false, "agent-only-listed-tools"},
		{"chained delegation", call("alice", "search", claims{"sub": "alice", "act": map[string]any{"sub": "agent-7", "act": map[string]any{"sub": "agent-9"}}}), false, "no-chained-delegation"},
		{"unknown person", call("mallory", "search", nil), false, ""},
	})
}

func TestExampleTenants(t *testing.T) {
	who := func(tenant, role string) map[string]any {
		m := map[string]any{"role": role}
		if tenant != "" {
			m["tenant"] = tenant
		}
		return m
	}
	in := func(tenant string) map[string]any {
		if tenant == "" {
			return nil
		}
		return map[string]any{"tenant": tenant}
	}
	tok := func(r policy.Request, tenant string) policy.Request { r.Token = claims{"tenant": tenant}; return r }
	runExample(t, "tenants", []exampleCase{
		{"member reads in own tenant", req("user", "u1", "read", "invoice", "i1", who("acme", "member"), in("acme")), true, "members-read"},
		{"member reads another tenant", req("user", "u1", "read", "invoice", "i1", who("acme", "member"), in("globex")), false, "same-tenant-only"},
		{"admin writes in own tenant", req("user", "u1", "write", "invoice", "i1", who("acme", "admin"), in("acme")), true, "admins-write"},
		{"admin writes another tenant", req("user", "u1", "write", "invoice", "i1", who("acme", "admin"), in("globex")), false, "same-tenant-only"},
		{"member may not write", req("user", "u1", "write", "invoice", "i1", who("acme", "member"), in("acme")), false, ""},
		{"resource without tenant", req("user", "u1", "read", "invoice", "i1", who("acme", "admin"), in("")), false, "same-tenant-only"},
		{"principal without tenant", req("user", "u1", "read", "invoice", "i1", who("", "admin"), in("acme")), false, "same-tenant-only"},
		{"token of the same tenant", tok(req("user", "u1", "read", "invoice", "i1", who("acme", "member"), in("acme")), "acme"), true, "members-read"},
		{"token of another tenant", tok(req("user", "u1", "read", "invoice", "i1", who("acme", "member"), in("acme")), "globex"), false, "token-tenant-must-match"},
	})
}
