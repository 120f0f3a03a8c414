package issuer

import (
	"errors"
	"slices"
	"strings"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/authzdetails"
)

// CodeInvalidAuthorizationDetails refuses authorization_details that are
// malformed, of an unknown type, past the limits, or more than the client
// or grant allows (RFC 9396 §5, §6).
const CodeInvalidAuthorizationDetails = "invalid_authorization_details"

// Rich Authorization Requests (RFC 9396) at every endpoint follow one set
// of rules, kept here:
//
//   - Only the authorization (the user's consent in the code flow, the
//     client's registration for client credentials) brings details in.
//     Refresh, the code grant's token request and token exchange keep them
//     or narrow them (authzdetails.List.Within), never widen, and never
//     add details to a grant that had none.
//   - Every mcp_tool resource must be one of the client's audiences, as a
//     resource indicator must (RFC 8707).
//   - A request that names no resource (or audience) is addressed to the
//     resources of its details; one that does must name every resource of
//     its details too, so aud and the details agree. Token exchange is the
//     exception: a token addressed to another client for further exchange
//     carries the details on to it (verify.AllowsTool documents why that
//     is safe).

// parseDetails reads a request's authorization_details parameter: nil
// when it is absent or empty (RFC 6749 §3.1: a parameter without a value
// is omitted), costing nothing then.
func parseDetails(raw string) (authzdetails.List, *Error) {
	if raw == "" {
		return nil, nil
	}
	l, err := authzdetails.Parse(raw)
	if err != nil {
		return nil, detailsError(err)
	}
	return l, nil
}

// detailsError is the invalid_authorization_details error for an error
// of package authzdetails.
func detailsError(err error) *Error {
	desc := err.Error()
	if errors.Is(err, authzdetails.ErrInvalid) {
		desc = strings.TrimPrefix(desc, authzdetails.ErrInvalid.Error()+": ")
	}
	return badRequest(CodeInvalidAuthorizationDetails, desc)
}

// clientDetails checks that every resource of l is one of client c's
// audiences.
func clientDetails(c *sigil.Client, l authzdetails.List) *Error {
	for _, r := range l.Resources() {
		if !c.HasAudience(r) {
			return badRequest(CodeInvalidAuthorizationDetails, "resource "+r+" is not one of this client's audiences")
		}
	}
	return nil
}

// detailsAudience decides aud for a request of client c with resource
// parameters given and details l: without details, grantAudience's rule;
// with them, their resources when no resource is given, else the given
// resources, which must include every resource of l.
func (h *Handler) detailsAudience(c *sigil.Client, given []string, l authzdetails.List) ([]string, *Error) {
	if len(l) == 0 {
		return h.grantAudience(c, given)
	}
	if oerr := clientDetails(c, l); oerr != nil {
		return nil, oerr
	}
	if !slices.ContainsFunc(given, func(r string) bool { return r != "" }) {
		return l.Resources(), nil
	}
	aud, oerr := h.grantAudience(c, given)
	if oerr != nil {
		return nil, oerr
	}
	for _, r := range l.Resources() {
		if !slices.Contains(aud, r) {
			return nil, badRequest(CodeInvalidAuthorizationDetails, "resource "+r+" of authorization_details is not among the resource parameters")
		}
	}
	return aud, nil
}

// narrowDetails decides the details of a token issued from a grant that
// holds granted: all of them without a request, else the requested ones,
// which must be within granted.
func narrowDetails(granted authzdetails.List, raw string) (authzdetails.List, *Error) {
	requested, oerr := parseDetails(raw)
	if oerr != nil || requested == nil {
		return granted, oerr
	}
	if err := requested.Within(granted); err != nil {
		return nil, detailsError(err)
	}
	return requested, nil
}
