package sigil_test

import (
	"testing"

	"github.com/sigil-sts/sigil"
)

func TestCheckIssuer(t *testing.T) {
	for _, ok := range []string{"https://sigil.example.com", "http://127.0.0.1:8080", "https://h.example/tenant-a", "https://h.example/a/b_c.d~e"} {
		if err := sigil.CheckIssuer(ok); err != nil {
			t.Errorf("CheckIssuer(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "sigil.example.com", "ftp://h.example", "https://", "https://h.example/", "https://h.example?x=1",
		"https://h.example?", "https://h.example#f", "https://u:p@h.example", "http://h/a b", "http://h/{x}",
		"http://h/a%2Fb", "http://h/%7Bx%7D", "https:opaque",
	} {
		if err := sigil.CheckIssuer(bad); err == nil {
			t.Errorf("CheckIssuer(%q) accepted it", bad)
		}
	}
}
