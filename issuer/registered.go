package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/secret"
)

// registrationChange is a change a client configuration request (RFC
// 7592 §2) made to a registered client: the version it replaced, the
// version stored, and the new registration access token.
type registrationChange struct {
	old, client *sigil.Client
	token       secret.Value
}

// maxChangeAttempts bounds how often changeRegistered reads a client
// again after losing a compare-and-swap to a change it did not see.
const maxChangeAttempts = 3

// changeRegistered stores the registration apply derives from old (the
// client registeredClient authenticated r for), with a new registration
// access token, as a compare-and-swap on the version read and its token
// hash (sigil.ClientStore.UpdateClientIf). The token is therefore used
// once: of concurrent requests presenting it, one succeeds and the others
// find it spent (401); and no change overwrites one it did not see, such
// as the operator's rotation of the secret. After losing to such a
// change the client is read and authenticated again, and apply runs on
// the new version.
func (h *Handler) changeRegistered(r *http.Request, old *sigil.Client, apply func(old *sigil.Client) (*sigil.Client, *Error)) (*registrationChange, *Error) {
	ctx := r.Context()
	for attempt := 1; ; attempt++ {
		c, oerr := apply(old)
		if oerr != nil {
			return nil, oerr
		}
		c.ID, c.UpdatedAt = old.ID, old.UpdatedAt
		rat := secret.Generate()
		c.RegistrationTokenHash = h.Secrets.Hash(rat)
		err := h.Store.UpdateClientIf(ctx, c, old.RegistrationTokenHash)
		switch {
		case err == nil:
			h.Cache.Invalidate()
			return &registrationChange{old: old, client: c, token: rat}, nil
		case errors.Is(err, sigil.ErrNotFound):
			// Deleted since it was read.
			return nil, invalidToken(true, "the registration access token is not valid", err)
		case errors.Is(err, sigil.ErrConflict) && attempt < maxChangeAttempts:
			if old, oerr = h.registeredClient(r); oerr != nil {
				return nil, oerr
			}
		case errors.Is(err, sigil.ErrConflict):
			return nil, &Error{Code: CodeTemporarilyUnavailable, Description: "the registration is being changed; retry shortly",
				Status: http.StatusServiceUnavailable, Cause: err}
		default:
			return nil, internal(fmt.Errorf("update registered client: %w", err))
		}
	}
}

// recordChange writes the audit record of a change through the
// registration endpoints and waits until it is durable, as token issuance
// does (issued): no client holds a registration, or a registration
// access token, that the trail does not show. When the trail cannot take
// the record, the change is undone and the answer is 503.
func (h *Handler) recordChange(ctx context.Context, ev audit.Event, ch *registrationChange, detail map[string]string) *Error {
	err := h.auditClient(ctx, ev, ch.client, detail)
	if err == nil {
		return nil
	}
	h.Log.ErrorContext(ctx, "audit: registration change not recorded; undone", "event", ev, "client_id", ch.client.ID, "err", err)
	h.undoChange(ctx, ch)
	return unavailable()
}

// undoChange puts back the registration ch replaced, registration access
// token included, unless it has changed again since.
func (h *Handler) undoChange(ctx context.Context, ch *registrationChange) {
	prev := *ch.old
	prev.UpdatedAt = ch.client.UpdatedAt
	if err := h.Store.UpdateClientIf(context.WithoutCancel(ctx), &prev, ch.client.RegistrationTokenHash); err != nil {
		h.Log.ErrorContext(ctx, "registration: change not undone", "client_id", prev.ID, "err", err)
	}
	h.Cache.Invalidate()
}

// auditClient records a change made through the registration endpoints
// and waits until the record is durable. The record names the client's
// name and redirect URIs: what a user was shown, and where they were sent.
func (h *Handler) auditClient(ctx context.Context, ev audit.Event, c *sigil.Client, detail map[string]string) error {
	if detail == nil {
		detail = map[string]string{}
	}
	detail["by"] = "registration"
	detail["client_name"] = c.Name
	detail["redirect_uris"] = strings.Join(c.RedirectURIs, " ")
	detail["auth_method"] = c.AuthMethod
	detail["grant_types"] = strings.Join(c.GrantTypes, " ")
	detail["registered_open"] = strconv.FormatBool(c.RegisteredOpen)
	err := h.Audit.Append(ctx, record(ctx, audit.Record{
		Event: ev, Outcome: audit.Success, ClientID: c.ID, Scope: strings.Join(c.Scopes, " "), Audience: c.Audiences, Detail: detail,
	}))
	if err != nil {
		return fmt.Errorf("issuer: audit %s of client %q: %w", ev, c.ID, err)
	}
	return nil
}

// refusedRegistration records a request refused for a wrong initial or
// registration access token, without waiting for the commit (as refused
// token requests are). clientID is set only for a client that exists:
// the path of an unknown one is the caller's text.
func (h *Handler) refusedRegistration(ctx context.Context, clientID, why string) {
	err := h.Audit.Enqueue(ctx, record(ctx, audit.Record{
		Event: audit.RegistrationRefused, Outcome: audit.Failure, Reason: CodeInvalidToken, ClientID: clientID,
		Detail: map[string]string{"why": why},
	}))
	if err != nil {
		h.Log.ErrorContext(ctx, "audit: refused registration not recorded", "client_id", clientID, "why", why, "err", err)
	}
}

// reservedNames are the names of the operator's clients, which no client
// registering itself may take, so that it cannot pass for one of them on
// the consent page. Names are compared without case and with runs of
// spaces as one. They are read from the store when a registration needs
// them, at most once per reservedNamesTTL: an operator client created
// since is protected within that time. Safe for concurrent use.
type reservedNames struct {
	mu     sync.Mutex
	names  map[string]bool
	loaded time.Time
}

// reservedNamesTTL is how long reservedNames keeps the names it read.
const reservedNamesTTL = time.Minute

// nameKey is the form in which names are compared.
func nameKey(name string) string { return strings.ToLower(strings.Join(strings.Fields(name), " ")) }

// reserved reports whether name is, but for case and spacing, the name of
// one of the operator's clients (those without a registration access
// token).
func (n *reservedNames) reserved(ctx context.Context, store sigil.ClientStore, name string, now time.Time) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names == nil || now.Sub(n.loaded) >= reservedNamesTTL || now.Before(n.loaded) {
		cs, err := store.Clients(ctx)
		if err != nil {
			return false, fmt.Errorf("issuer: read the operator's client names: %w", err)
		}
		names := map[string]bool{}
		for _, c := range cs {
			if len(c.RegistrationTokenHash) == 0 {
				names[nameKey(c.Name)] = true
			}
		}
		n.names, n.loaded = names, now
	}
	return n.names[nameKey(name)], nil
}

// checkReservedName refuses a self-registered client name that is an
// operator client's.
func (h *Handler) checkReservedName(ctx context.Context, name string) *Error {
	if name == "" {
		return nil
	}
	taken, err := h.reservedNames.reserved(ctx, h.Store, name, h.now())
	if err != nil {
		return internal(err)
	}
	if taken {
		return badRequest(CodeInvalidClientMetadata, "client_name is the name of a client registered by the operator; choose another")
	}
	return nil
}
