package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/authzen"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/issuer"
	"github.com/sigil-sts/sigil/policy"
	"github.com/sigil-sts/sigil/policy/source"
	"github.com/sigil-sts/sigil/verify"
)

// callerTokenCache is about how many verified PEP tokens the AuthZEN API
// keeps (verify.ParseCache): PEPs present the same token for many
// decisions.
const callerTokenCache = 1_000

// authZEN builds the AuthZEN API on the policies of cfg.PolicyDir, or
// returns nil when none is configured. A policy set that does not load
// stops the start, with each file:line error: a PDP must not start
// denying everything.
//
// It also returns the directory's fingerprint from before the load, for
// watchPolicies.
func authZEN(cfg config.Config, core *Core, iss *issuer.Handler, trail audit.Appender, log *slog.Logger) (*authzen.Handler, uint64, error) {
	if cfg.PolicyDir == "" {
		return nil, 0, nil
	}
	// Taken before the load: a change while it loads is seen by the
	// watch (watchPolicies) and loaded again.
	fp, err := source.Fingerprint(cfg.PolicyDir)
	if err != nil {
		return nil, 0, fmt.Errorf("server: policy-dir %s: %w", cfg.PolicyDir, err)
	}
	pdp, err := policy.NewPDP(source.Loader(cfg.PolicyDir, cfg.PolicyEngine))
	if err != nil {
		return nil, 0, fmt.Errorf("server: policy-dir %s: %w", cfg.PolicyDir, err)
	}
	pdp.Log = log
	h := &authzen.Handler{
		PDP:        pdp,
		Identifier: iss.Issuer,
		// The caller's token must be meant for this PDP, whose
		// identifier is the issuer URL: what a client without audiences
		// gets by default.
		Verifier: &verify.Verifier{Keys: core.Keys, Issuer: iss.Issuer, Audience: iss.Issuer, Leeway: cfg.Leeway,
			Cache: verify.NewParseCache(callerTokenCache)},
		DPoP:   &dpop.Checker{Replay: core.Store, Nonces: iss.DPoPNonces, Leeway: cfg.Leeway},
		Active: iss.ActiveAccessToken,
		Scope:  cfg.AuthZENScope,
		Log:    log,
	}
	if cfg.PolicyAuditDecisions {
		h.Audit = trail
	}
	if err := h.Init(); err != nil {
		return nil, 0, err
	}
	return h, fp, nil
}

// watchPolicies reloads the policy directory when its files change.
func (s *Server) watchPolicies(ctx context.Context) {
	cfg := s.Core.Config
	source.Watch(ctx, cfg.PolicyDir, s.policyPrint, cfg.PolicyReloadInterval, s.AuthZEN.PDP, s.Log, nil)
}
