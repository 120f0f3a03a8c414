package server

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/store/postgres"
	"github.com/sigil-sts/sigil/store/sqlite"
)

// Core is what every command that touches state needs: the store, the
// signing keys, the secret hasher and the admin service over them.
type Core struct {
	Config  config.Config
	Store   sigil.Store
	Keys    *keys.Set
	Secrets *secret.Hasher
	Admin   *admin.Service
	// NonceKey is the MAC key of DPoP nonces, the same on every node.
	NonceKey []byte
	// StateKey is the root key of the issuer's browser flow (see
	// issuer.Handler.StateKey), the same on every node.
	StateKey []byte
}

// initialAlgs are the algorithms that get a key on first start: ES256 for
// access tokens and RS256, which OpenID Connect requires for ID tokens.
func initialAlgs(cfg config.Config) []string {
	algs := []string{cfg.AccessTokenAlg}
	for _, a := range []string{"RS256", cfg.IDTokenAlg} {
		if a != "" && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

// OpenCore validates cfg, opens the store and loads the keys, creating the
// first keys on a new store.
func OpenCore(ctx context.Context, cfg config.Config) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mk, err := keys.LoadMasterKey(cfg.MasterKey, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Records a crashed server acknowledged but did not write yet go into
	// the trail before anything reads or extends it.
	if _, err := audit.RecoverJournal(ctx, st, JournalPath(cfg.DataDir)); err != nil {
		st.Close()
		return nil, err
	}
	secrets, err := secret.NewHasher(mk.Derive("client secrets"))
	if err != nil {
		st.Close()
		return nil, err
	}
	ks := &keys.Set{
		Store:      st,
		Sealer:     keys.NewSealer(mk),
		Prepublish: cfg.KeysPrepublish,
		// A retired key stays published until the longest-lived token it
		// signed has expired, plus leeway.
		RetainRetired: cfg.AccessTokenMaxTTL + cfg.Leeway + time.Minute,
	}
	if err := ks.Init(ctx, initialAlgs(cfg)...); err != nil {
		st.Close()
		return nil, fmt.Errorf("server: load keys: %w", err)
	}
	return &Core{
		NonceKey: mk.Derive("dpop nonces"),
		StateKey: mk.Derive("issuer browser flow"),
		Config:   cfg,
		Store:    st,
		Keys:     ks,
		Secrets:  secrets,
		Admin: &admin.Service{Store: st, Keys: ks, Secrets: secrets, MaxAccessTokenTTL: cfg.AccessTokenMaxTTL,
			// CLI commands write their few records synchronously; Start
			// replaces this with the server's batching writer.
			Audit: audit.Direct{Store: st, Node: cfg.Node() + "/cli"}},
	}, nil
}

// openStore opens the PostgreSQL store cfg.DSN names or, without one, the
// embedded store in cfg.DataDir.
func openStore(ctx context.Context, cfg config.Config) (sigil.Store, error) {
	if cfg.DSN != "" {
		// The data directory still holds this node's audit journal and
		// admin token.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("server: data directory: %w", err)
		}
		return postgres.Open(ctx, cfg.DSN)
	}
	return sqlite.Open(ctx, cfg.DataDir)
}

// Close closes the store.
func (c *Core) Close() error { return c.Store.Close() }
