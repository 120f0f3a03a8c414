package issuer

import (
	"context"
)

// jwtBearer is the JWT bearer grant (RFC 7523 §2.1): a workload trades a
// token of a trusted external issuer (its assertion) for an access token
// of the Sigil client the Federation maps it to. The token is what client
// credentials would give that client: sub and client_id are its ID, the
// scopes and audience its own (scope and resource narrow them), the
// lifetime its own.
//
// Client authentication is optional (RFC 7523 §3.1): the assertion
// authenticates the workload. A request that carries no client
// authentication and no client_id is accepted on the assertion alone
// (Handler.token skips authentication for it); one that does is
// authenticated as usual, and the client must be the one the assertion
// maps to. The client needs no grant_types entry for this grant: the
// operator's mapping rules are what allow it, and nothing a client
// registers can add to them.
type jwtBearer struct{ h *Handler }

func (jwtBearer) Type() string { return GrantJWTBearer }

func (g jwtBearer) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error) {
	h, f := g.h, req.Form
	if len(f["assertion"]) != 1 || f.Get("assertion") == "" {
		return nil, invalidRequest("assertion is required, once")
	}
	fed, reason, err := h.verifyFederated(ctx, f.Get("assertion"), GrantJWTBearer)
	if err != nil {
		return nil, internal(err)
	}
	if reason != "" {
		return nil, badRequest(CodeInvalidGrant, "the assertion is refused: "+reason)
	}
	c := fed.Client
	if req.Client != nil && req.Client.ID != c.ID {
		return nil, badRequest(CodeInvalidGrant, "the assertion maps to another client than the one that authenticated")
	}
	if c.DPoPBound && req.DPoP == nil {
		// Handler.token checked the proof against no client when the
		// request did not authenticate one.
		return nil, badRequest(CodeInvalidDPoPProof, "this client must send a DPoP proof")
	}
	scopes, oerr := grantScope(c, f.Get("scope"))
	if oerr != nil {
		return nil, oerr
	}
	// As for client credentials: bounded by the mapped client's audiences.
	details, oerr := parseDetails(f.Get("authorization_details"))
	if oerr != nil {
		return nil, oerr
	}
	aud, oerr := h.detailsAudience(c, f["resource"], details)
	if oerr != nil {
		return nil, oerr
	}
	return h.issueAccessToken(ctx, c, c.ID, scopes, aud, req.DPoP, details)
}
