package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/verify"
)

// Defaults of ClientDocuments' zero fields.
const (
	DefaultDocumentTimeout    = 5 * time.Second
	DefaultDocumentSlotWait   = time.Second
	DefaultDocumentMinTTL     = time.Minute
	DefaultDocumentMaxTTL     = time.Hour
	DefaultDocumentMaxStale   = time.Hour
	DefaultDocumentFailureTTL = 10 * time.Second
)

// Bounds on documents and their URLs.
const (
	// maxDocumentSize is the draft's recommended limit (§ "Maximum
	// Response Size"): a larger document is an error, not truncated.
	maxDocumentSize = 5 << 10
	// maxDocumentURL bounds a client_id URL.
	maxDocumentURL = 2048
)

// documentMethods are the authentication methods a client metadata
// document may name: no shared secret can exist (the draft's "Credential
// and Key Material Restrictions").
var documentMethods = []string{sigil.AuthNone, sigil.AuthPrivateKeyJWT}

// ClientDocuments resolves client_ids that are https URLs naming client
// metadata documents (draft-ietf-oauth-client-id-metadata-document): the
// server fetches the JSON document at the URL, checks it, and uses the
// client it describes without storing it. Documents are cached for their
// Cache-Control max-age within [MinTTL, MaxTTL] (see docCache for the
// bounds on memory, and on what a flood of made-up URLs can evict).
//
// Fetches are bounded at once, per host and in all (see slots), so that
// no one host, however slow, can hold every fetch. A failure that may
// pass (Sigil busy, a timeout, DNS, a refused connection, a 5xx answer)
// is never remembered and reads as sigil.ErrUnavailable (503, retry),
// not as an unknown client; meanwhile a copy past its max-age is served
// for up to MaxStale (stale-if-error). A definitive failure (the document
// missing or unusable) is remembered for FailureTTL.
//
// Set the fields before first use; it is safe for concurrent use after.
type ClientDocuments struct {
	// RootCAs verifies document servers' certificates; nil means the
	// system's roots.
	RootCAs *x509.CertPool
	// UnsafeAllowLoopback also fetches documents from loopback
	// addresses. For tests only: in production it lets any client_id make
	// the server call itself. Every other special-use address stays
	// refused.
	UnsafeAllowLoopback bool
	// Timeout bounds one fetch once it has its slots, connection
	// included; zero means DefaultDocumentTimeout.
	Timeout time.Duration
	// SlotWait bounds the wait for a fetch slot, apart from Timeout: when
	// the document's host, or every slot, stays busy that long, the
	// lookup fails as unavailable. Zero means DefaultDocumentSlotWait.
	SlotWait time.Duration
	// MinTTL and MaxTTL bound how long a fetched document is used (its
	// Cache-Control max-age; MinTTL without one, or with no-cache or
	// no-store); zero means DefaultDocumentMinTTL and
	// DefaultDocumentMaxTTL.
	MinTTL, MaxTTL time.Duration
	// MaxStale is how long past its expiry a document is still used while
	// fetching it again fails in a way that may pass (RFC 5861's
	// stale-if-error); zero means DefaultDocumentMaxStale.
	MaxStale time.Duration
	// FailureTTL is how long a missing or unusable document is remembered
	// before its URL is fetched again, so that a broken or hostile
	// client_id does not make the server fetch on every request; zero
	// means DefaultDocumentFailureTTL.
	FailureTTL time.Duration

	once  sync.Once
	hc    *http.Client
	slots *slots
	cache *docCache
}

func (d *ClientDocuments) init() {
	if d.Timeout == 0 {
		d.Timeout = DefaultDocumentTimeout
	}
	if d.SlotWait == 0 {
		d.SlotWait = DefaultDocumentSlotWait
	}
	if d.MinTTL == 0 {
		d.MinTTL = DefaultDocumentMinTTL
	}
	if d.MaxTTL == 0 {
		d.MaxTTL = DefaultDocumentMaxTTL
	}
	if d.MaxTTL < d.MinTTL {
		d.MaxTTL = d.MinTTL
	}
	if d.MaxStale == 0 {
		d.MaxStale = DefaultDocumentMaxStale
	}
	if d.FailureTTL == 0 {
		d.FailureTTL = DefaultDocumentFailureTTL
	}
	d.hc = newFetchClient(d.RootCAs, d.UnsafeAllowLoopback, d.Timeout)
	d.slots = newSlots(maxFetches, maxFetchesPerHost)
	d.cache = newDocCache(maxDocuments, maxDocumentsPerHost, maxDocumentFailures)
}

// documentError says why a client_id URL does not give a usable client.
// It is sigil.ErrNotFound to callers that only ask whether the client
// exists; public is what the user may be shown, cause what is logged.
type documentError struct {
	public string
	cause  error
}

func (e *documentError) Error() string {
	if e.cause != nil {
		return "client metadata document: " + e.public + ": " + e.cause.Error()
	}
	return "client metadata document: " + e.public
}

func (e *documentError) Unwrap() error { return e.cause }

func (e *documentError) Is(target error) bool { return target == sigil.ErrNotFound }

func docError(cause error, format string, a ...any) *documentError {
	return &documentError{public: fmt.Sprintf(format, a...), cause: cause}
}

// unavailableError says a document could not be had for a reason that
// may pass: Sigil's fetch slots stayed busy, or the network or the
// document's server failed. It is sigil.ErrUnavailable to callers (503,
// retry), never sigil.ErrNotFound: a client must not lose its grants, nor
// its tokens introspect as inactive, because its document was out of
// reach for a moment.
type unavailableError struct {
	public string
	cause  error
}

func (e *unavailableError) Error() string {
	return "client metadata document unavailable: " + e.public + ": " + e.cause.Error()
}

func (e *unavailableError) Unwrap() error { return e.cause }

func (e *unavailableError) Is(target error) bool { return target == sigil.ErrUnavailable }

func unavailableDoc(cause error, public string) *unavailableError {
	return &unavailableError{public: public, cause: cause}
}

// isDocumentID reports whether a client_id names a client metadata
// document. Client ids Sigil issues are hex, never URLs.
func isDocumentID(id string) bool { return strings.HasPrefix(id, "https://") }

// documentHost is the host (and port, when one is given) of a client_id
// URL, which the pages show beside the name the document claims; "" for
// other client ids. It is ASCII: checkDocumentURL refuses other hosts.
func documentHost(id string) string {
	if !isDocumentID(id) {
		return ""
	}
	u, err := url.Parse(id)
	if err != nil {
		return ""
	}
	return u.Host
}

// client finds the client id names: from its metadata document when id is
// an https URL and ClientDocuments is set, else from the store through
// the cache. Every lookup of a request's client goes through it.
func (h *Handler) client(ctx context.Context, id string) (*cachedClient, error) {
	if h.ClientDocuments != nil && isDocumentID(id) {
		return h.ClientDocuments.get(ctx, id, h.now, func(body []byte) (*cachedClient, error) {
			return h.clientFromDocument(id, body)
		})
	}
	return h.Cache.Client(ctx, id)
}

// checkDocumentURL reports why id cannot be a client identifier URL (the
// draft's § "Client Identifier URL"): https, a host, a path, no userinfo,
// query, fragment or dot segments; an IP literal must be one the server
// may connect to.
func (d *ClientDocuments) checkDocumentURL(id string) error {
	if len(id) > maxDocumentURL {
		return errors.New("the client_id URL is too long")
	}
	u, err := url.Parse(id)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return errors.New("the client_id is not an https URL")
	case u.User != nil:
		return errors.New("the client_id URL must not carry a user name or password")
	case u.RawQuery != "" || strings.Contains(id, "?"):
		return errors.New("the client_id URL must not have a query")
	case strings.Contains(id, "#"):
		return errors.New("the client_id URL must not have a fragment")
	case u.Path == "":
		return errors.New("the client_id URL must have a path")
	case !isASCII(u.Host):
		// The pages show the host to the user: a lookalike letter from
		// another script (a homograph) must not read as the Latin one
		// while the fetch goes to the punycode name someone else owns.
		return errors.New("the client_id URL's host must be written in ASCII (its A-label, xn--, form)")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") ||
			strings.EqualFold(seg, ".%2e") || strings.EqualFold(seg, "%2e.") {
			return errors.New("the client_id URL must not have . or .. path segments")
		}
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := checkFetchAddr(a, d.UnsafeAllowLoopback); err != nil {
			return fmt.Errorf("the client_id URL names an address the server does not fetch from: %w", err)
		}
	}
	return nil
}

// fetch GETs the document at id, once it has a fetch slot for host, and
// returns its body and how long it may be used. Only a 200 answer with a
// JSON media type and at most maxDocumentSize bytes is a document. A
// failure that may pass is an *unavailableError, any other a
// *documentError.
func (d *ClientDocuments) fetch(ctx context.Context, id, host string) ([]byte, time.Duration, error) {
	release, err := d.slots.acquire(ctx, host, d.SlotWait)
	if err != nil {
		return nil, 0, unavailableDoc(err, "the server is busy fetching other client metadata documents")
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, 0, docError(err, "the client_id is not a URL the server can fetch")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Sigil (client metadata document fetch)")
	resp, err := d.hc.Do(req)
	if err != nil {
		// Not shown: the cause may say how the server's resolver sees
		// internal names.
		var cv *tls.CertificateVerificationError
		if errors.Is(err, errRefusedAddress) || errors.As(err, &cv) {
			return nil, 0, docError(err, "the client's metadata document could not be fetched")
		}
		return nil, 0, unavailableDoc(err, "the client's metadata document could not be fetched")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return nil, 0, unavailableDoc(fmt.Errorf("HTTP %d", resp.StatusCode), "the client's metadata document server failed")
	case resp.StatusCode != http.StatusOK:
		return nil, 0, docError(nil, "the client's metadata document answered HTTP %d, not 200 (redirects are not followed)", resp.StatusCode)
	case !jsonMediaType(resp.Header.Get("Content-Type")):
		return nil, 0, docError(nil, "the client's metadata document is not served as JSON")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, 0, unavailableDoc(err, "the client's metadata document could not be read")
	}
	if len(body) > maxDocumentSize {
		return nil, 0, docError(nil, "the client's metadata document is larger than %d bytes", maxDocumentSize)
	}
	return body, documentTTL(resp.Header, d.MinTTL, d.MaxTTL), nil
}

// jsonMediaType reports whether ct is application/json or an
// application/*+json type (the draft allows the latter).
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// documentTTL is how long a document may be used: its Cache-Control
// max-age (RFC 9111 §5.2.2.1) within [lo, hi]; lo when there is none, or
// with no-store or no-cache.
func documentTTL(h http.Header, lo, hi time.Duration) time.Duration {
	ttl := lo
	for _, dir := range strings.Split(strings.Join(h.Values("Cache-Control"), ","), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(dir), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return lo
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
			if err == nil && n >= 0 {
				ttl = time.Duration(min(n, int64(hi/time.Second))) * time.Second
			}
		}
	}
	return min(max(ttl, lo), hi)
}

// clientDocument is a client metadata document: RFC 7591 client metadata
// plus the client_id, which must be the URL it was fetched from.
type clientDocument struct {
	ClientID string `json:"client_id"`
	// A document must not carry a secret (the draft's "Credential and Key
	// Material Restrictions"); these are kept only to refuse it.
	ClientSecret          json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
	ClientMetadata
}

// clientFromDocument checks the document fetched from id and returns the
// client it describes, under the rules of dynamic registration with
// these differences: no shared secrets (none or private_key_jwt, which
// is the default when jwks is given, else none), no client_credentials,
// and the keys only by value (jwks, not jwks_uri).
func (h *Handler) clientFromDocument(id string, body []byte) (*cachedClient, error) {
	var doc clientDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, docError(err, "the client's metadata document is not a JSON object of client metadata")
	}
	switch {
	case doc.ClientID != id:
		return nil, docError(nil, "the client_id in the client's metadata document is not the URL it was fetched from")
	case doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil:
		return nil, docError(nil, "the client's metadata document must not carry a client secret")
	case len(doc.RedirectURIs) == 0:
		return nil, docError(nil, "the client's metadata document lists no redirect_uris")
	}
	m := &doc.ClientMetadata
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = sigil.AuthNone
		if len(m.JWKS) > 0 && string(m.JWKS) != "null" {
			m.TokenEndpointAuthMethod = sigil.AuthPrivateKeyJWT
		}
	}
	c, oerr := h.clientFromMetadata(m, metadataRules{methods: documentMethods,
		noClientCredentials: "a client metadata document cannot register client_credentials: its client acts only for users who consent"})
	if oerr != nil {
		return nil, docError(oerr, "the client's metadata document is not acceptable: %s", oerr.Description)
	}
	c.ID = id
	e := &cachedClient{client: c}
	if len(c.JWKS) > 0 {
		e.jwks, e.err = verify.ParseJWKS(c.JWKS)
	}
	return e, nil
}
