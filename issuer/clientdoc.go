package issuer

import (
	"context"
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
	DefaultDocumentMinTTL     = time.Minute
	DefaultDocumentMaxTTL     = time.Hour
	DefaultDocumentFailureTTL = 10 * time.Second
)

// Bounds on documents and their URLs.
const (
	// maxDocumentSize is the draft's recommended limit (§ "Maximum
	// Response Size"): a larger document is an error, not truncated.
	maxDocumentSize = 5 << 10
	// maxDocumentURL bounds a client_id URL.
	maxDocumentURL = 2048
	// maxDocuments bounds the cache; past it, the cache starts over.
	maxDocuments = 10_000
	// maxFetches bounds the fetches in flight at once, so that requests
	// naming many URLs cannot make the server open unbounded connections.
	maxFetches = 16
)

// documentMethods are the authentication methods a client metadata
// document may name: no shared secret can exist (the draft's "Credential
// and Key Material Restrictions").
var documentMethods = []string{sigil.AuthNone, sigil.AuthPrivateKeyJWT}

// ClientDocuments resolves client_ids that are https URLs naming client
// metadata documents (draft-ietf-oauth-client-id-metadata-document): the
// server fetches the JSON document at the URL, checks it, and uses the
// client it describes without storing it. Documents are cached for their
// Cache-Control max-age within [MinTTL, MaxTTL]. Set the fields before
// first use; it is safe for concurrent use after.
type ClientDocuments struct {
	// RootCAs verifies document servers' certificates; nil means the
	// system's roots.
	RootCAs *x509.CertPool
	// UnsafeAllowLoopback also fetches documents from loopback
	// addresses. For tests only: in production it lets any client_id make
	// the server call itself. Every other special-use address stays
	// refused.
	UnsafeAllowLoopback bool
	// Timeout bounds one fetch, connection included; zero means
	// DefaultDocumentTimeout.
	Timeout time.Duration
	// MinTTL and MaxTTL bound how long a fetched document is used (its
	// Cache-Control max-age; MinTTL without one, or with no-cache or
	// no-store); zero means DefaultDocumentMinTTL and
	// DefaultDocumentMaxTTL.
	MinTTL, MaxTTL time.Duration
	// FailureTTL is how long a failed fetch or unusable document is
	// remembered before its URL is fetched again, so that a broken or
	// hostile client_id does not make the server fetch on every request;
	// zero means DefaultDocumentFailureTTL.
	FailureTTL time.Duration

	once    sync.Once
	hc      *http.Client
	sem     chan struct{}
	mu      sync.Mutex
	entries map[string]*docEntry
}

// docEntry is one URL's document, or the fetch of it in progress.
type docEntry struct {
	ready   chan struct{} // closed when the fetch has ended
	client  *cachedClient
	err     error
	expires time.Time
}

func (d *ClientDocuments) init() {
	if d.Timeout == 0 {
		d.Timeout = DefaultDocumentTimeout
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
	if d.FailureTTL == 0 {
		d.FailureTTL = DefaultDocumentFailureTTL
	}
	d.hc = newFetchClient(d.RootCAs, d.UnsafeAllowLoopback, d.Timeout)
	d.sem = make(chan struct{}, maxFetches)
	d.entries = map[string]*docEntry{}
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

// isDocumentID reports whether a client_id names a client metadata
// document. Client ids Sigil issues are hex, never URLs.
func isDocumentID(id string) bool { return strings.HasPrefix(id, "https://") }

// documentHost is the host (and port, when one is given) of a client_id
// URL, which the pages show beside the name the document claims; "" for
// other client ids.
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
	return h.Clients.Client(ctx, id)
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

// get returns the client of document URL id, from the cache or fetched
// and converted by convert. Concurrent requests for one URL share one
// fetch. A failure is remembered for FailureTTL.
func (d *ClientDocuments) get(ctx context.Context, id string, now func() time.Time, convert func([]byte) (*cachedClient, error)) (*cachedClient, error) {
	d.once.Do(d.init)
	if err := d.checkDocumentURL(id); err != nil {
		return nil, docError(nil, "%v", err)
	}
	d.mu.Lock()
	e, ok := d.entries[id]
	if ok {
		select {
		case <-e.ready:
			if now().Before(e.expires) {
				d.mu.Unlock()
				return e.client, e.err
			}
			ok = false // expired: fetch again
		default: // being fetched
		}
	}
	if ok {
		d.mu.Unlock()
		select {
		case <-e.ready:
			return e.client, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e = &docEntry{ready: make(chan struct{})}
	if len(d.entries) >= maxDocuments {
		d.entries = map[string]*docEntry{}
	}
	d.entries[id] = e
	d.mu.Unlock()

	// The fetch is shared, so it does not end with the request that
	// started it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.Timeout)
	defer cancel()
	body, ttl, err := d.fetch(fctx, id)
	if err == nil {
		e.client, err = convert(body)
	}
	if err != nil {
		e.client, e.err, ttl = nil, err, d.FailureTTL
	}
	e.expires = now().Add(ttl)
	close(e.ready)
	return e.client, e.err
}

// fetch GETs the document at id and returns its body and how long it may
// be used. Only a 200 answer with a JSON media type and at most
// maxDocumentSize bytes is a document.
func (d *ClientDocuments) fetch(ctx context.Context, id string) ([]byte, time.Duration, error) {
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	case <-ctx.Done():
		return nil, 0, docError(ctx.Err(), "the server is busy fetching other client metadata documents")
	}
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
		return nil, 0, docError(err, "the client's metadata document could not be fetched")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, docError(nil, "the client's metadata document answered HTTP %d, not 200 (redirects are not followed)", resp.StatusCode)
	}
	if !jsonMediaType(resp.Header.Get("Content-Type")) {
		return nil, 0, docError(nil, "the client's metadata document is not served as JSON")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, 0, docError(err, "the client's metadata document could not be read")
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
