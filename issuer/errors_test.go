package issuer

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestErrorDescriptionCharset: request input quoted in error_description
// (a grant type, a repeated parameter's name) never carries characters
// outside RFC 6749 §5.2's set, and the description is bounded.
func TestErrorDescriptionCharset(t *testing.T) {
	for _, desc := range []string{
		"grant_type \"\nx\\\u2028 is not supported",
		"parameter foo\r\n\"injected\": true must not be repeated",
		strings.Repeat("a", 10_000),
		"\x00\x1f\x7f\xff",
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/token", nil)
		writeError(w, r, slog.New(slog.DiscardHandler), invalidRequest(desc))
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Description) > maxDescription {
			t.Errorf("description of %d bytes", len(body.Description))
		}
		for _, c := range []byte(body.Description) {
			if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
				t.Errorf("description %q holds byte %#x outside RFC 6749 §5.2", body.Description, c)
				break
			}
		}
	}
}
