package issuer

import (
	"context"

	"github.com/sigil-sts/sigil/token"
)

// ActiveAccessToken reports whether an access token of this issuer, whose
// signature and times the caller has already verified (verify.Verifier),
// is still active: its client exists and no revocation matches it. It
// returns "" for an active token, else why not ("client_deleted",
// "revoked"); err is a store failure. Endpoints beside the issuer's own
// (the AuthZEN API) use it so that a revoked caller is refused at once,
// not when its status list next refreshes.
func (h *Handler) ActiveAccessToken(ctx context.Context, verified *token.Claims) (reason string, err error) {
	_, reason, err = h.activeToken(ctx, "", verified)
	return reason, err
}
