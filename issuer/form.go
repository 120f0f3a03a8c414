package issuer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/sigil-sts/sigil/internal/httpx"
)

// maxFormBytes bounds a request body at the form endpoints. A client
// assertion signed with RSA-4096 and generous claims fits several times.
const maxFormBytes = 64 << 10

// multiValued lists the parameters that may repeat: resource (RFC 8707
// §2) and audience (RFC 8693 §2.1). RFC 6749 §3.2 forbids repeating any
// other.
var multiValued = map[string]bool{"resource": true, "audience": true}

// credentialParams must never travel in the URL, where they end up in logs.
var credentialParams = []string{"client_secret", "client_assertion", "token"}

// readForm parses the body of a form POST once, enforcing the media type,
// the size limit and single-valued parameters. Query parameters are never
// read as request parameters.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if !httpx.HasMediaType(r, "application/x-www-form-urlencoded") {
		return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	q := r.URL.Query()
	for _, p := range credentialParams {
		if q.Has(p) {
			return nil, invalidRequest("parameter " + p + " must not be sent in the URL query")
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, invalidRequest("request body too large")
		}
		return nil, invalidRequest("malformed form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && !multiValued[k] {
			return nil, invalidRequest("parameter " + k + " must not be repeated")
		}
	}
	return r.PostForm, nil
}

func unmarshalSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
