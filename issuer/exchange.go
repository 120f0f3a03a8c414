package issuer

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/authzdetails"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// Token type identifiers (RFC 8693 §3).
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML2       = "urn:ietf:params:oauth:token-type:saml2"
	TokenTypeRefresh     = "urn:ietf:params:oauth:token-type:refresh_token"
)

// DefaultMaxDelegationDepth is how many actors an exchanged token's act
// chain may hold unless the Handler says otherwise.
const DefaultMaxDelegationDepth = 3

// ClientAudience is the audience that addresses a token to a client for
// further exchange: a client may exchange the tokens whose aud holds
// ClientAudience(its ID), and may address a token to another client only
// if that audience is one of its own allowed audiences.
func ClientAudience(clientID string) string { return "urn:sigil:client:" + clientID }

// tokenExchange is OAuth 2.0 Token Exchange (RFC 8693) for delegation: an
// authenticated, confidential client (an agent) trades a subject token (a
// user's, or one delegated to it) for a narrower one whose act claim
// names it, on top of the chain the subject token already carries (§4.1).
//
// Who may act for whom: the subject token must have been issued to the
// client (client_id) or addressed to it (aud holds ClientAudience). The
// actor is the client, or the subject of the actor token, which must be
// the client's own client_credentials token. The user's may_act claim as
// it is now (else the subject token's) must name the actor at every hop.
// Impersonation (a token without act) is never issued.
//
// Downscoping: the scopes are those requested (or, by default, all that
// remain) within the subject token's, or for an ID token the user's
// consent, and the client's; the audience is one of the client's allowed
// audiences; the token expires no later than the subject (and actor)
// token; a DPoP proof binds it to the proof's key, and a bound subject
// token's binding moves to the client's key, never drops. Authorization
// details (RFC 9396) are those requested within the subject token's, or
// by default all of the subject token's for the client's audiences
// (exchangeDetails).
type tokenExchange struct{ h *Handler }

func (tokenExchange) Type() string { return sigil.GrantTokenExchange }

func (g tokenExchange) Exchange(ctx context.Context, req *TokenRequest) (*TokenResponse, *Error) {
	// Parameters other than resource and audience cannot repeat (readForm).
	h, c, f := g.h, req.Client, req.Form
	if c.AuthMethod == sigil.AuthNone {
		// RFC 8693 §5: never for an unauthenticated client.
		return nil, badRequest(CodeUnauthorizedClient, "public clients may not use token exchange")
	}
	subjectToken, subjectType := f.Get("subject_token"), f.Get("subject_token_type")
	actorToken, actorType := f.Get("actor_token"), f.Get("actor_token_type")
	switch {
	case subjectToken == "" || subjectType == "":
		return nil, invalidRequest("subject_token and subject_token_type are required")
	case (actorToken == "") != (actorType == ""):
		return nil, invalidRequest("actor_token and actor_token_type go together")
	}
	issuedType := f.Get("requested_token_type")
	switch issuedType {
	case "":
		issuedType = TokenTypeAccessToken
	case TokenTypeAccessToken, TokenTypeJWT, TokenTypeIDToken:
	case TokenTypeSAML2:
		return nil, invalidRequest("requested_token_type saml2 is not supported yet")
	default:
		return nil, invalidRequest("requested_token_type must be access_token, jwt or id_token")
	}

	subject, fromIDToken, oerr := h.exchangeSubject(ctx, c, subjectToken, subjectType)
	if oerr != nil {
		return nil, oerr
	}
	// A user's token carries the user's entitlements, read afresh; a
	// client's own token (sub = client_id) carries none.
	var user *sigil.User
	if subject.Subject != subject.ClientID {
		u, err := h.Cache.User(ctx, subject.Subject)
		switch {
		case err == nil && u.Disabled:
			return nil, invalidRequest("the subject token's user is disabled")
		case err == nil:
			user = u
		case !errors.Is(err, sigil.ErrNotFound):
			return nil, internal(err)
		}
	}
	actor := &token.Actor{Subject: c.ID}
	notAfter := subject.Expiry.Time()
	var actorClaims *token.Claims
	if actorToken != "" {
		ac, oerr := h.exchangeActor(ctx, c, actorToken, actorType)
		if oerr != nil {
			return nil, oerr
		}
		actor.Subject, actorClaims = ac.Subject, ac
		if e := ac.Expiry.Time(); e.Before(notAfter) {
			notAfter = e
		}
	}
	// may_act binds every hop: the user's claim as it is now (an ID token
	// carries none), else the subject token's; it goes on into the new
	// token.
	mayAct := subject.MayAct
	if user != nil {
		mayAct = userMayAct(user)
	}
	if m := mayAct; m != nil && (m.Subject != actor.Subject || (m.Issuer != "" && m.Issuer != h.Issuer)) {
		return nil, invalidRequest("the subject's may_act does not name " + actor.Subject)
	}
	actor.Act = subject.Act
	if max := h.maxDelegationDepth(); actor.Depth() > max {
		return nil, invalidRequest("the delegation chain would be longer than " + strconv.Itoa(max) + " actors")
	}
	if jkt := subject.BoundKey(); jkt != "" {
		// The binding moves to the client's key, never away: a token
		// addressed to the client needs a proof of the client's key, any
		// other the holder's.
		switch {
		case req.DPoP == nil:
			return nil, invalidRequest("the subject token is bound to a DPoP key; send a DPoP proof")
		case !addressedTo(subject, c) && req.DPoP.JKT != jkt:
			return nil, invalidRequest("the subject token is bound to another DPoP key")
		}
	}

	bound, consented, oerr := h.exchangeBound(ctx, c, subject, fromIDToken)
	if oerr != nil {
		return nil, oerr
	}
	scopes, oerr := narrowScope(bound, f.Get("scope"))
	if oerr != nil {
		return nil, oerr
	}
	if issuedType == TokenTypeIDToken {
		return h.exchangeIDToken(ctx, req, subject, user, scopes, actor, notAfter)
	}
	details, requested, oerr := exchangeDetails(c, subject, fromIDToken, f.Get("authorization_details"))
	if oerr != nil {
		return nil, oerr
	}
	targets := append(slices.Clone(f["resource"]), f["audience"]...)
	if requested && !slices.ContainsFunc(targets, func(a string) bool { return a != "" }) {
		// Named tool servers address the token, as in the other grants.
		targets = details.Resources()
	}
	aud, oerr := h.exchangeAudience(c, targets)
	if oerr != nil {
		return nil, oerr
	}
	if fromIDToken {
		// An ID token says who signed in, not what they allowed: the
		// audiences are bounded by the user's consent too (and a sub-agent
		// the client may delegate to). A tool server the user allowed only
		// some tools of is not among them (saveConsent), so an ID token
		// cannot turn a grant of some tools into a token without details.
		for _, a := range aud {
			if !slices.Contains(consented, a) && !strings.HasPrefix(a, ClientAudience("")) {
				return nil, badRequest(CodeInvalidTarget, "audience "+a+" is not one the user consented to for this client")
			}
		}
	}
	var extra map[string]any
	if user != nil {
		extra = entitlements(user)
	}
	id, oerr := h.newTokenID(ctx)
	if oerr != nil {
		return nil, oerr
	}
	if notAfter.Sub(id.iat) < time.Second {
		return nil, invalidRequest("the subject token expires now")
	}
	resp, oerr := h.mintAccessToken(c, accessGrant{
		id: id, sub: subject.Subject, scopes: scopes, aud: aud, proof: req.DPoP, extra: extra,
		authTime: subject.AuthTime.Time(), act: actor, mayAct: mayAct, notAfter: notAfter, details: details,
	})
	if oerr != nil {
		return nil, oerr
	}
	resp.IssuedTokenType = issuedType
	h.linkExchange(resp, c, subject, actorClaims)
	// RFC 8693 §2.2.1: scope may be left out only when it is what was
	// requested; always sending it is simpler for clients.
	return resp, nil
}

// linkExchange links an exchanged token to the tokens it came from, for
// its audit record and the checks after it (exchangeRecorded), when they
// are this issuer's (a trusted external issuer's jti means nothing here):
// revoking either revokes it. actor is nil without an actor token.
func (h *Handler) linkExchange(resp *TokenResponse, c *sigil.Client, subject, actor *token.Claims) {
	if subject.Issuer == h.Issuer {
		resp.subjectTokenJTI = subject.JTI
		ref := tokenRef(subject)
		if subject.ClientID == "" {
			ref.ClientID = c.ID // an ID token, issued to c as exchangeSubject checked
		}
		resp.exchangedFrom = append(resp.exchangedFrom, ref)
	}
	if actor != nil {
		resp.actorTokenJTI = actor.JTI
		resp.exchangedFrom = append(resp.exchangedFrom, tokenRef(actor))
	}
}

// exchangeIDToken issues an ID token (requested_token_type id_token): the
// user's identity, for the client itself (aud and azp), with the
// delegation chain in act, no longer lived than the subject token. It
// needs a user's subject token and the openid scope among those left;
// resource, audience and authorization_details do not apply to it.
func (h *Handler) exchangeIDToken(ctx context.Context, req *TokenRequest, subject *token.Claims, user *sigil.User,
	scopes []string, actor *token.Actor, notAfter time.Time) (*TokenResponse, *Error) {
	f, c := req.Form, req.Client
	switch {
	case user == nil:
		return nil, invalidRequest("an ID token is issued for a user's subject token only")
	case !slices.Contains(scopes, "openid"):
		return nil, badRequest(CodeInvalidScope, "an ID token needs the openid scope")
	case slices.ContainsFunc(append(slices.Clone(f["resource"]), f["audience"]...), func(a string) bool { return a != "" }):
		return nil, badRequest(CodeInvalidTarget, "an ID token is addressed to the client itself: no resource or audience")
	case f.Get("authorization_details") != "":
		return nil, invalidRequest("authorization_details do not apply to an ID token")
	}
	if notAfter.Sub(h.now()) < time.Second {
		return nil, invalidRequest("the subject token expires now")
	}
	raw, claims, oerr := h.signIDToken(idTokenGrant{client: c, user: user, scopes: scopes, authTime: subject.AuthTime.Time(),
		acr: subject.ACR, amr: subject.AMR, act: actor, notAfter: notAfter})
	if oerr != nil {
		return nil, oerr
	}
	resp := &TokenResponse{AccessToken: raw, TokenType: "N_A", ExpiresIn: int64(claims.Expiry.Time().Sub(claims.IssuedAt.Time()) / time.Second),
		Scope: strings.Join(scopes, " "), IssuedTokenType: TokenTypeIDToken, claims: claims}
	h.linkExchange(resp, c, subject, nil)
	return resp, nil
}

// exchangeRecorded closes the race between a token exchange and the
// revocation of its subject or actor token, once the issuance record is
// queued (issued): it waits for the record to commit, then checks both
// tokens again. A revocation the check does not see commits after it,
// and so after the record: the walk of the chain that follows it
// (package revocation) finds the record, however late this node's audit
// writer or this request was. One the check sees withholds the token.
// Without it a node whose trail reached the store after that walk (a slow
// commit, a failover, a full queue) handed out a token linked to a
// revoked one only in the trail, which nothing would ever revoke.
func (h *Handler) exchangeRecorded(ctx context.Context, resp *TokenResponse) *Error {
	if len(resp.exchangedFrom) == 0 {
		return nil
	}
	if f, ok := h.Audit.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(ctx); err != nil {
			h.Log.ErrorContext(ctx, "audit: token exchange not committed; token withheld", "jti", resp.claims.JTI, "err", err)
			return unavailable()
		}
	}
	for _, ref := range resp.exchangedFrom {
		revoked, err := h.Store.Revoked(ctx, ref)
		if err != nil {
			return internal(err)
		}
		if revoked {
			h.Log.InfoContext(ctx, "token exchange: subject or actor token revoked meanwhile; token withheld", "jti", resp.claims.JTI, "from", ref.JTI)
			return invalidRequest("the subject or actor token was revoked")
		}
	}
	return nil
}

// tokenRef is what a revocation check needs of a token.
func tokenRef(c *token.Claims) sigil.TokenRef {
	return sigil.TokenRef{JTI: c.JTI, ClientID: c.ClientID, Subject: c.Subject, IssuedAt: c.IssuedAt.Time()}
}

// exchangeSubject verifies a subject token of the declared type: one of
// this issuer's access tokens, issued to c or addressed to it, live and
// unrevoked; one of its ID tokens issued to c (idToken); or, of type jwt,
// a token of a trusted external issuer that maps to c (federatedSubject).
func (h *Handler) exchangeSubject(ctx context.Context, c *sigil.Client, raw, typ string) (_ *token.Claims, idToken bool, _ *Error) {
	if typ == TokenTypeJWT && h.Federation != nil {
		// A JWT of a trusted external issuer (workload identity): iss,
		// unverified, only routes it to the Federation, which verifies it.
		if iss, err := peekIssuer(raw); err == nil && h.Federation.Trusts(iss) {
			claims, oerr := h.federatedSubject(ctx, c, raw)
			return claims, false, oerr
		}
	}
	switch typ {
	case TokenTypeAccessToken, TokenTypeJWT:
		claims, why, err := h.activeToken(ctx, raw, nil)
		if err != nil {
			return nil, false, internal(err)
		}
		if why != "" {
			return nil, false, invalidRequest("the subject token is not active (" + why + ")")
		}
		if claims.ClientID != c.ID && !addressedTo(claims, c) {
			return nil, false, invalidRequest("the subject token was neither issued nor addressed to this client")
		}
		return claims, false, nil
	case TokenTypeIDToken:
		v := &verify.Verifier{Keys: h.Keys, Issuer: h.Issuer, Audience: c.ID, Type: TypeIDToken, Leeway: h.Leeway, Now: h.Now}
		claims, err := v.Verify(ctx, raw)
		if err != nil {
			return nil, false, invalidRequest("the subject token is not a valid ID token issued to this client")
		}
		revoked, err := h.Store.Revoked(ctx, sigil.TokenRef{JTI: claims.JTI, ClientID: c.ID, Subject: claims.Subject, IssuedAt: claims.IssuedAt.Time()})
		if err != nil {
			return nil, false, internal(err)
		}
		if revoked {
			return nil, false, invalidRequest("the subject token is not active (revoked)")
		}
		return claims, true, nil
	case TokenTypeSAML2:
		return nil, false, invalidRequest("subject_token_type saml2 is not supported yet")
	default:
		return nil, false, invalidRequest("subject_token_type must be access_token, jwt or id_token")
	}
}

// exchangeActor verifies an actor token: an access token of this issuer,
// live, unrevoked and issued to c (the agent presents its own token).
func (h *Handler) exchangeActor(ctx context.Context, c *sigil.Client, raw, typ string) (*token.Claims, *Error) {
	if typ != TokenTypeAccessToken && typ != TokenTypeJWT {
		return nil, invalidRequest("actor_token_type must be access_token or jwt")
	}
	claims, why, err := h.activeToken(ctx, raw, nil)
	if err != nil {
		return nil, internal(err)
	}
	if why != "" {
		return nil, invalidRequest("the actor token is not active (" + why + ")")
	}
	if claims.ClientID != c.ID {
		return nil, invalidRequest("the actor token was not issued to this client")
	}
	if claims.Subject != c.ID || claims.Act != nil {
		// A user's token, or one delegated to the client, would name
		// someone else as the actor.
		return nil, invalidRequest("the actor token must be the client's own (client_credentials) token")
	}
	return claims, nil
}

// addressedTo reports whether a token was addressed to client c for
// further exchange.
func addressedTo(t *token.Claims, c *sigil.Client) bool {
	return slices.Contains(t.Audience, ClientAudience(c.ID))
}

// exchangeBound is what the new token's scopes must stay within: the
// subject token's scopes, or for an ID token (which says who signed in,
// not what they allowed) the user's stored consent to the client; either
// cut to the client's own scopes. For an ID token it also returns the
// consent's audiences, which bound the new token's.
func (h *Handler) exchangeBound(ctx context.Context, c *sigil.Client, subject *token.Claims, fromIDToken bool) (scopes, consented []string, _ *Error) {
	granted := subject.Scopes()
	if fromIDToken {
		consent, err := h.Store.Consent(ctx, subject.Subject, c.ID)
		switch {
		case errors.Is(err, sigil.ErrNotFound):
			return nil, nil, invalidRequest("the user has not consented to this client")
		case err != nil:
			return nil, nil, internal(err)
		}
		granted, consented = consent.Scopes, consent.Audience
	}
	return slices.DeleteFunc(slices.Clone(granted), func(s string) bool { return !slices.Contains(c.Scopes, s) }), consented, nil
}

// exchangeDetails decides the new token's authorization details (RFC
// 9396) and reports whether the request named them. The bound is the
// subject token's details cut to the client's audiences, as its scopes
// are cut to the client's scopes: the requested details must be within
// it, and without a request the new token carries all of it. Every hop
// keeps or narrows, never widens. A subject token with details none of
// which is left for the client is refused rather than exchanged for a
// token without details, which a resource server might read as bounded
// by its scopes alone; one without details (an ID token, a federated
// workload's token, a token issued without them) gets none.
func exchangeDetails(c *sigil.Client, subject *token.Claims, fromIDToken bool, raw string) (authzdetails.List, bool, *Error) {
	var granted authzdetails.List
	if !fromIDToken { // an ID token carries no grant (exchangeBound)
		granted = subject.AuthorizationDetails
	}
	requested, oerr := parseDetails(raw)
	if oerr != nil {
		return nil, false, oerr
	}
	if requested != nil {
		if oerr := clientDetails(c, requested); oerr != nil {
			return nil, false, oerr
		}
		if err := requested.Within(granted); err != nil {
			return nil, false, detailsError(err)
		}
		return requested, true, nil
	}
	bound := granted.Filter(c.HasAudience)
	if len(granted) > 0 && len(bound) == 0 {
		return nil, false, badRequest(CodeInvalidAuthorizationDetails, "none of the subject token's authorization details is for this client's audiences")
	}
	return bound, false, nil
}

// narrowScope picks the requested scopes, each of which must be in bound,
// or without a request all of bound. Nothing left is invalid_scope: an
// empty scope must never read as unbounded further down the chain.
func narrowScope(bound []string, requested string) ([]string, *Error) {
	if strings.TrimSpace(requested) == "" {
		if len(bound) == 0 {
			return nil, badRequest(CodeInvalidScope, "no scope of the subject token is left for this client")
		}
		return bound, nil
	}
	var out []string
	for _, s := range token.SplitScope(requested) {
		if !sigil.ValidScope(s) {
			return nil, badRequest(CodeInvalidScope, "malformed scope value")
		}
		if !slices.Contains(bound, s) {
			return nil, badRequest(CodeInvalidScope, "scope "+s+" is not within the subject token's and the client's")
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, badRequest(CodeInvalidScope, "no scope requested")
	}
	return out, nil
}

// exchangeAudience decides aud from the resource and audience parameters:
// each must be one of the client's allowed audiences (else
// invalid_target). Without any, the client's first audience, as for
// client credentials.
func (h *Handler) exchangeAudience(c *sigil.Client, given []string) ([]string, *Error) {
	given = slices.DeleteFunc(given, func(a string) bool { return a == "" })
	if len(given) == 0 {
		return h.grantAudience(c, nil)
	}
	var out []string
	for _, a := range given {
		if !c.HasAudience(a) {
			return nil, badRequest(CodeInvalidTarget, "audience "+a+" is not allowed for this client")
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// maxDelegationDepth is the longest act chain the handler issues.
func (h *Handler) maxDelegationDepth() int {
	if h.MaxDelegationDepth > 0 {
		return h.MaxDelegationDepth
	}
	return DefaultMaxDelegationDepth
}

// userMayAct is the may_act claim of a user's access tokens: the user's
// claim of that name, {"sub": "<client_id>"}, says which agent alone may
// act for them through token exchange. Anything else is no claim.
func userMayAct(u *sigil.User) *token.Actor {
	m, ok := u.Claims["may_act"].(map[string]any)
	if !ok {
		return nil
	}
	sub, ok := m["sub"].(string)
	if !ok || sub == "" {
		return nil
	}
	iss, _ := m["iss"].(string)
	return &token.Actor{Subject: sub, Issuer: iss}
}
