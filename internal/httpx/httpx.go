// Package httpx holds the small HTTP helpers the protocol packages share:
// request ids, JSON responses, and bounded form and JSON reading.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

type ctxKey struct{}

type sourceKey struct{}

// RequestIDHeader is the response header that carries the request id.
const RequestIDHeader = "X-Request-Id"

// WithRequestID gives every request a fresh random id, sets it on the
// response and in the request context, with the peer address (Source). Client-sent ids are ignored: they
// would let a caller forge log correlation.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), ctxKey{}, id)
		ctx = context.WithValue(ctx, sourceKey{}, r.RemoteAddr)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// WithDeadline gives every request's context a deadline d away, so that
// nothing a request waits for (a database that stopped answering) holds
// it longer: the store's calls fail and the client gets an error.
func WithDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Source returns the request's peer address (host:port), or "" outside
// WithRequestID. Forwarding headers are not trusted.
func Source(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

// RequestID returns the request's id, or "" outside WithRequestID.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WriteJSON writes v as JSON with status. Extra headers go on h first.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	WriteRawJSON(w, status, b)
}

// WriteRawJSON writes already-encoded JSON with status.
func WriteRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// NoStore sets the headers that keep token responses out of caches
// (RFC 6749 §5.1).
func NoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// ErrTooLarge reports a body over the limit.
var ErrTooLarge = errors.New("request body too large")

// HasMediaType reports whether r's Content-Type is want (parameters such as
// charset are allowed).
func HasMediaType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == want
}

// ReadJSON decodes at most limit bytes of r's body into v, refusing unknown
// fields, trailing data and a Content-Type other than application/json.
func ReadJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if !HasMediaType(r, "application/json") {
		return errors.New("Content-Type must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	d := json.NewDecoder(body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrTooLarge
		}
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("invalid JSON body: data after the object")
	}
	return nil
}
