package verify_test

import (
	"testing"

	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

func TestAllowsTool(t *testing.T) {
	const mcp = "https://mcp.example/mcp"
	granted := &token.Claims{AuthorizationDetails: authzdetails.List{
		{Type: authzdetails.TypeMCPTool, Resource: mcp, Tools: []string{"search", "fetch"}},
		{Type: authzdetails.TypeMCPTool, Resource: "https://other.example", Tools: []string{"delete"}},
		{Type: "payment", Resource: mcp, Tools: []string{"pay"}},
	}}
	for _, tc := range []struct {
		name           string
		claims         *token.Claims
		resource, tool string
		want           bool
	}{
		{"granted tool", granted, mcp, "search", true},
		{"second tool", granted, mcp, "fetch", true},
		{"tool not granted", granted, mcp, "delete", false},
		{"tool of another server", granted, "https://other.example", "search", false},
		{"other server's own tool", granted, "https://other.example", "delete", true},
		{"tool of another type", granted, mcp, "pay", false},
		{"case differs", granted, mcp, "Search", false},
		{"resource with trailing slash", granted, mcp + "/", "search", false},
		{"resource prefix", granted, "https://mcp.example", "search", false},
		{"empty tool", granted, mcp, "", false},
		{"no details", &token.Claims{Scope: "tools"}, mcp, "search", false},
		{"nil claims", nil, mcp, "search", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verify.AllowsTool(tc.claims, tc.resource, tc.tool); got != tc.want {
				t.Errorf("AllowsTool(%q, %q) = %v, want %v", tc.resource, tc.tool, got, tc.want)
			}
		})
	}
}
