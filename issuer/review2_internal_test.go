package issuer

import (
	"testing"
)

// TestReview2DocumentHostHomograph: a client_id URL may have a non-ASCII
// host. The fetch goes to its punycode (A-label) form, but the consent
// page shows documentHost as written, so "https://аpple.com/app" (Cyrillic
// а) reads as apple.com to the user while an attacker owns
// xn--pple-43d.com. The host shown (or the URL accepted) must be ASCII.
func TestReview2DocumentHostHomograph(t *testing.T) {
	id := "https://\u0430pple.com/app" // Cyrillic small a
	d := &ClientDocuments{}
	if err := d.checkDocumentURL(id); err != nil {
		return // refused: fine
	}
	host := documentHost(id)
	for _, r := range host {
		if r > 0x7e {
			t.Fatalf("client_id %q accepted and shown to the user as host %q (fetched from its punycode form)", id, host)
		}
	}
}
