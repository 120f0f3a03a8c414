package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/secret"
)

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 256 << 10

// Handler is the admin HTTP API. Every request must carry the admin token
// as a Bearer token.
type Handler struct {
	Service *Service
	// Token is the admin API token.
	Token secret.Value
	Log   *slog.Logger
}

// Mount registers the admin API under /admin/v1.
func (h *Handler) Mount(mux *http.ServeMux) {
	p := "/admin/v1"
	mux.Handle("GET "+p+"/clients", h.auth(h.listClients))
	mux.Handle("POST "+p+"/clients", h.auth(h.createClient))
	mux.Handle("GET "+p+"/clients/{id}", h.auth(h.getClient))
	mux.Handle("DELETE "+p+"/clients/{id}", h.auth(h.deleteClient))
	mux.Handle("POST "+p+"/clients/{id}/rotate-secret", h.auth(h.rotateSecret))
	mux.Handle("GET "+p+"/users", h.auth(h.listUsers))
	mux.Handle("POST "+p+"/users", h.auth(h.createUser))
	mux.Handle("GET "+p+"/users/{id}", h.auth(h.getUser))
	mux.Handle("PATCH "+p+"/users/{id}", h.auth(h.updateUser))
	mux.Handle("DELETE "+p+"/users/{id}", h.auth(h.deleteUser))
	mux.Handle("POST "+p+"/users/{id}/password", h.auth(h.setPassword))
	mux.Handle("GET "+p+"/keys", h.auth(h.listKeys))
	mux.Handle("POST "+p+"/keys/rotate", h.auth(h.rotateKey))
	mux.Handle("POST "+p+"/revocations", h.auth(h.revoke))
	mux.Handle("GET "+p+"/audit", h.auth(h.queryAudit))
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// auth checks the bearer token in constant time (both sides hashed first,
// so neither length nor content leaks through timing).
func (h *Handler) auth(next func(http.ResponseWriter, *http.Request) error) http.Handler {
	want := sha256.Sum256([]byte(h.Token.Reveal()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// The scheme name is case-insensitive (RFC 7235 §2.1).
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer")
		got := sha256.Sum256([]byte(tok))
		if !ok || h.Token.IsZero() || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sigil-admin"`)
			httpx.WriteJSON(w, http.StatusUnauthorized, apiError{Error: "unauthorized", Description: "send the admin token as a Bearer token"})
			return
		}
		if err := next(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case IsValidation(err):
		httpx.WriteJSON(w, http.StatusBadRequest, apiError{Error: "invalid_request", Description: err.Error()})
	case errors.Is(err, sigil.ErrNotFound):
		httpx.WriteJSON(w, http.StatusNotFound, apiError{Error: "not_found", Description: "no such object"})
	case errors.Is(err, sigil.ErrConflict):
		httpx.WriteJSON(w, http.StatusConflict, apiError{Error: "conflict", Description: "the object already exists"})
	case errors.Is(err, sigil.ErrUnavailable):
		h.log().WarnContext(r.Context(), "admin API: store unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		httpx.WriteJSON(w, http.StatusServiceUnavailable, apiError{Error: "temporarily_unavailable", Description: "the store is unavailable; retry shortly"})
	default:
		id := httpx.RequestID(r.Context())
		h.log().ErrorContext(r.Context(), "admin API error", "path", r.URL.Path, "request_id", id, "err", err)
		httpx.WriteJSON(w, http.StatusInternalServerError, apiError{Error: "server_error", RequestID: id})
	}
}

func (h *Handler) listClients(w http.ResponseWriter, r *http.Request) error {
	cs, err := h.Service.Clients(r.Context())
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, cs)
	return nil
}

func (h *Handler) createClient(w http.ResponseWriter, r *http.Request) error {
	var spec ClientSpec
	if err := httpx.ReadJSON(w, r, maxAdminBody, &spec); err != nil {
		return invalid("%v", err)
	}
	c, err := h.Service.CreateClient(r.Context(), spec)
	if c == nil {
		return err
	}
	if err != nil {
		// Stored, but not audited: show the one-time secret anyway.
		h.log().ErrorContext(r.Context(), "client created without its audit record", "client_id", c.ClientID, "err", err)
	}
	httpx.WriteJSON(w, http.StatusCreated, c)
	return nil
}

func (h *Handler) getClient(w http.ResponseWriter, r *http.Request) error {
	c, err := h.Service.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request) error {
	if err := h.Service.DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	c, err := h.Service.RotateSecret(r.Context(), r.PathValue("id"))
	if c == nil {
		return err
	}
	if err != nil {
		h.log().ErrorContext(r.Context(), "secret rotated without its audit record", "client_id", c.ClientID, "err", err)
	}
	httpx.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := h.Service.ListKeys(r.Context())
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, ks)
	return nil
}

func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Alg string `json:"alg"`
	}
	if r.ContentLength != 0 {
		if err := httpx.ReadJSON(w, r, maxAdminBody, &req); err != nil {
			return invalid("%v", err)
		}
	}
	k, err := h.Service.RotateKey(r.Context(), req.Alg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, k)
	return nil
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		JTI     string `json:"jti"`
		Client  string `json:"client"`
		Subject string `json:"subject"`
	}
	if err := httpx.ReadJSON(w, r, maxAdminBody, &req); err != nil {
		return invalid("%v", err)
	}
	if _, err := h.Service.Revoke(r.Context(), req.JTI, req.Client, req.Subject); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxAuditLimit bounds one audit query's page.
const maxAuditLimit = 10_000

// queryAudit answers GET /admin/v1/audit?client=&subject=&jti=&event=
// &exchanged_from=&since=&until=&after=&limit= with a JSON array of
// records (seq, prev, hash and the record's members), oldest first. since
// and until are RFC 3339; after is a sequence number to page from;
// exchanged_from selects the tokens exchanged from the token with that jti.
func (h *Handler) queryAudit(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := sigil.AuditQuery{ClientID: v.Get("client"), Subject: v.Get("subject"), JTI: v.Get("jti"), Event: v.Get("event"),
		ExchangedFrom: v.Get("exchanged_from")}
	var err error
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			if *t.dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return invalid("%s must be an RFC 3339 time", t.name)
			}
		}
	}
	if s := v.Get("after"); s != "" {
		if q.AfterSeq, err = strconv.ParseInt(s, 10, 64); err != nil || q.AfterSeq < 0 {
			return invalid("after must be a sequence number")
		}
	}
	q.Limit = 1000
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > maxAuditLimit {
			return invalid("limit must be between 1 and %d", maxAuditLimit)
		}
	}
	// Records this node queued are in the answer: they may still be on
	// their way from the journal to the store.
	if f, ok := h.Service.Audit.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(r.Context()); err != nil {
			return fmt.Errorf("flush the audit queue: %w", err)
		}
	}
	entries, err := h.Service.Store.QueryAudit(r.Context(), q)
	if err != nil {
		return err
	}
	out := []byte{'['}
	for _, e := range entries {
		if !audit.Matches(e, q) {
			continue // its index columns were edited; the body says otherwise
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, audit.MarshalEntry(e)...)
	}
	httpx.WriteRawJSON(w, http.StatusOK, append(out, ']'))
	return nil
}
