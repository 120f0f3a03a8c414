package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/authzen"
	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/dpop"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/issuer"
	"github.com/sigil-sts/sigil/password"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/statuslist"
)

// Listener limits: every listener has them (slowloris, huge headers).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 32 << 10
	keyRefresh        = time.Second // the longest between two key reloads
	backgroundTimeout = 10 * time.Second
	purgeInterval     = time.Minute
)

// Server is a running node: the public listener (issuer endpoints, health)
// and the admin listener.
type Server struct {
	Core       *Core
	Issuer     *issuer.Handler
	AdminToken secret.Value
	Log        *slog.Logger
	// Audit is the audit writer; nil when the trail is turned off.
	Audit *audit.Writer
	// AuthZEN is the AuthZEN API; nil without a policy directory.
	AuthZEN *authzen.Handler
	// policyPrint is the policy directory's fingerprint before AuthZEN's
	// policies loaded (source.Watch).
	policyPrint uint64

	public, admin     *http.Server
	publicLn, adminLn net.Listener
	ready             atomic.Bool
	cancel            context.CancelFunc
	wg                sync.WaitGroup
}

// Start builds the handlers on core, listens on the configured addresses
// and serves until Shutdown. It returns once both listeners accept
// connections.
func Start(ctx context.Context, core *Core, log *slog.Logger) (*Server, error) {
	cfg := core.Config
	if log == nil {
		log = slog.Default()
	}
	core.Keys.Lifecycle = true
	core.Keys.LoadPrivate = true
	if err := core.Keys.Refresh(ctx); err != nil {
		return nil, err
	}
	clients := &issuer.Cache{Clients: core.Store, Users: core.Store}
	core.Admin.Changed = clients.Invalidate
	var trail audit.Appender = audit.Discard{}
	var writer *audit.Writer
	started := false // the writer; until then an early return closes it
	if cfg.AuditEnabled {
		journal, err := openJournal(cfg, log)
		if err != nil {
			return nil, err
		}
		writer = &audit.Writer{
			Journal:            journal,
			Store:              core.Store,
			Node:               cfg.Node(),
			QueueSize:          cfg.AuditQueue,
			Sign:               audit.KeySigner(core.Keys, cfg.AccessTokenAlg),
			CheckpointEvery:    cfg.AuditCheckpointEvery,
			CheckpointInterval: cfg.AuditCheckpointInterval,
			Log:                log,
		}
		trail = writer
		defer func() {
			if !started {
				writer.Close(ctx) // releases the journal
			}
		}()
	}
	core.Admin.Audit = trail
	proxies, err := cfg.TrustedProxyPrefixes() // checked by Validate
	if err != nil {
		return nil, err
	}
	iss := &issuer.Handler{
		Issuer:              cfg.IssuerURL(),
		Store:               core.Store,
		Cache:               clients,
		Keys:                core.Keys,
		Secrets:             core.Secrets,
		AccessTokenAlg:      cfg.AccessTokenAlg,
		AccessTokenTTL:      cfg.AccessTokenTTL,
		MaxAccessTokenTTL:   cfg.AccessTokenMaxTTL,
		Leeway:              cfg.Leeway,
		Log:                 log,
		Audit:               trail,
		StateKey:            core.StateKey,
		CheckPassword:       checkPassword,
		IDTokenAlg:          cfg.IDTokenAlg,
		SessionTTL:          cfg.SessionTTL,
		DeviceCodeTTL:       cfg.DeviceCodeTTL,
		DevicePollInterval:  cfg.DevicePollInterval,
		RefreshTokenIdleTTL: cfg.RefreshTokenIdleTTL,
		MaxDelegationDepth:  cfg.DelegationMaxDepth,
		RefreshTokenMaxTTL:  cfg.RefreshTokenMaxTTL,
		TrustedProxies:      proxies,
	}
	if cfg.DPoPNonce {
		iss.DPoPNonces = &dpop.Nonces{Key: core.NonceKey}
	}
	if err := selfRegistration(iss, cfg, core.Secrets, log); err != nil {
		return nil, err
	}
	iss.StatusEntries = &statuslist.Allocator{
		Store:   core.Store,
		Holder:  cfg.Node(),
		BaseURI: iss.StatusListBase(),
		// Every token allocated under a lease expires, and stops being
		// accepted, within this after the lease ends.
		Retention: cfg.AccessTokenMaxTTL + cfg.Leeway + time.Minute,
		// A relying party may use a published list until its exp, plus
		// its leeway.
		Quarantine: statuslist.Validity + config.MaxLeeway,
	}
	iss.StatusLists = &statuslist.Publisher{
		Store: core.Store, Keys: core.Keys, Alg: cfg.AccessTokenAlg,
		Issuer: iss.Issuer, BaseURI: iss.StatusListBase(), TTL: cfg.StatusListTTL,
	}
	if iss.Federation, err = federation(cfg); err != nil {
		return nil, err
	}
	if err := iss.Init(); err != nil {
		return nil, err
	}
	az, policyPrint, err := authZEN(cfg, core, iss, trail, log)
	if err != nil {
		return nil, err
	}
	s := &Server{Core: core, Issuer: iss, Log: log, Audit: writer, AuthZEN: az, policyPrint: policyPrint}

	mux := http.NewServeMux()
	iss.Mount(mux)
	if az != nil {
		az.Mount(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteRawJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			httpx.WriteRawJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"starting"}`))
			return
		}
		httpx.WriteRawJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
	})
	if s.publicLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.Listen, err)
	}
	s.public = newHTTPServer(httpx.WithRequestID(httpx.WithDeadline(cfg.RequestTimeout, mux)), log)

	if cfg.AdminListen != "" {
		if cfg.AdminToken != "" {
			s.AdminToken = secret.New(cfg.AdminToken)
		} else if s.AdminToken, err = admin.LoadToken(cfg.DataDir); err != nil {
			s.publicLn.Close()
			return nil, err
		}
		amux := http.NewServeMux()
		(&admin.Handler{Service: core.Admin, Token: s.AdminToken, Log: log}).Mount(amux)
		if s.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			s.publicLn.Close()
			return nil, fmt.Errorf("server: admin listen on %s: %w", cfg.AdminListen, err)
		}
		s.admin = newHTTPServer(httpx.WithRequestID(httpx.WithDeadline(cfg.RequestTimeout, amux)), log)
	}

	// Started only now that nothing can fail before serving, so an early
	// error leaves no writer running.
	if writer != nil {
		if err := writer.Start(); err != nil {
			s.publicLn.Close()
			if s.adminLn != nil {
				s.adminLn.Close()
			}
			return nil, err
		}
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.goLoop(func() { clients.Watch(bg, s.version, cfg.CacheRefresh) })
	s.goLoop(func() { s.refreshKeys(bg) })
	if n, ok := core.Store.(sigil.ChangeNotifier); ok {
		s.goLoop(func() { s.watchChanges(bg, n, clients) })
	}
	s.goLoop(func() { s.purge(bg) })
	if az != nil && cfg.PolicyReloadInterval > 0 {
		s.goLoop(func() { s.watchPolicies(bg) })
	}
	s.goLoop(func() { s.serve(s.public, s.publicLn) })
	if s.admin != nil {
		s.goLoop(func() { s.serve(s.admin, s.adminLn) })
	}
	started = true
	s.ready.Store(true)
	return s, nil
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) goLoop(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.Log.Error("listener failed", "addr", ln.Addr().String(), "err", err)
	}
}

// PublicAddr is the public listener's address (useful with port 0).
func (s *Server) PublicAddr() string { return s.publicLn.Addr().String() }

// AdminAddr is the admin listener's address, or "" when disabled.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// refreshKeys reloads the key set when the store's change counter moves
// (polled every cache-refresh: a rotation made by the CLI or another node)
// and at least every keyRefresh (a key whose pre-publication delay has
// passed becomes active).
func (s *Server) refreshKeys(ctx context.Context) {
	t := time.NewTicker(min(s.Core.Config.CacheRefresh, keyRefresh))
	defer t.Stop()
	last, _ := s.version(ctx)
	loaded := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v, verr := s.version(ctx)
			if (verr != nil || v == last) && time.Since(loaded) < keyRefresh {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
			err := s.Core.Keys.Refresh(cctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					s.Log.Error("key refresh failed", "err", err)
				}
				continue
			}
			if verr == nil {
				last = v
			}
			loaded = time.Now()
		}
	}
}

// version reads the store's change counter, giving up after
// backgroundTimeout: a background loop must not hang on a database that
// stopped answering.
func (s *Server) version(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
	defer cancel()
	return s.Core.Store.Version(ctx)
}

// watchChanges drops the client cache and reloads the keys as soon as the
// store announces a change made anywhere (PostgreSQL: LISTEN/NOTIFY),
// listening again a second after the listener fails. The polling loops
// keep running beside it, for notifications lost meanwhile.
func (s *Server) watchChanges(ctx context.Context, n sigil.ChangeNotifier, clients *issuer.Cache) {
	for {
		err := n.WatchChanges(ctx, func() {
			clients.Invalidate()
			if err := s.Core.Keys.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.Log.Error("key refresh failed", "err", err)
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.Log.Warn("listening for store changes failed; polling meanwhile", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// purge deletes expired replay-cache entries and revocations.
func (s *Server) purge(ctx context.Context) {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			cctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
			if _, err := s.Core.Store.PurgeReplay(cctx, now); err != nil && ctx.Err() == nil {
				s.Log.Error("purge replay cache failed", "err", err)
			}
			if _, err := s.Core.Store.PurgeRevocations(cctx, now); err != nil && ctx.Err() == nil {
				s.Log.Error("purge revocations failed", "err", err)
			}
			if _, err := s.Core.Store.PurgeAuthz(cctx, now); err != nil && ctx.Err() == nil {
				s.Log.Error("purge sessions, codes and refresh tokens failed", "err", err)
			}
			cancel()
		}
	}
}

// Shutdown stops accepting connections, lets in-flight requests finish
// (until ctx ends), flushes the audit queue with a final checkpoint, stops
// the background loops and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	var errs []error
	for _, srv := range []*http.Server{s.public, s.admin} {
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.Audit != nil {
		if err := s.Audit.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.cancel()
	s.wg.Wait()
	errs = append(errs, s.Core.Close())
	return errors.Join(errs...)
}

// JournalPath is where a server on dataDir keeps its audit journal.
func JournalPath(dataDir string) string { return filepath.Join(dataDir, "audit.journal") }

// journalLockWait is how long a starting server waits for the audit
// journal's lock before running without a journal.
const journalLockWait = 2 * time.Second

// openJournal opens the audit journal in the data directory. When another
// process holds it (a second server on the same directory), this one runs
// without: each token response then waits for its record's commit.
func openJournal(cfg config.Config, log *slog.Logger) (*audit.Journal, error) {
	j, err := audit.OpenJournal(JournalPath(cfg.DataDir))
	// A CLI command recovering a crashed server's journal holds it for a
	// moment.
	for deadline := time.Now().Add(journalLockWait); errors.Is(err, audit.ErrJournalLocked) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		j, err = audit.OpenJournal(JournalPath(cfg.DataDir))
	}
	switch {
	case errors.Is(err, audit.ErrJournalLocked):
		log.Warn("audit journal in use by another process; token responses will wait for audit commits")
		return nil, nil
	case errors.Is(err, errors.ErrUnsupported):
		log.Warn("no audit journal on this platform; token responses will wait for audit commits", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return j, nil
}

// checkPassword is the issuer's password check over package password: a
// hash with other parameters than today's is replaced by a new one on the
// next sign-in.
func checkPassword(hash, pw string) (bool, string) {
	if hash == "" {
		password.VerifyDummy(pw)
		return false, ""
	}
	ok, rehash, err := password.Verify(hash, pw)
	if err != nil || !ok {
		return false, ""
	}
	if rehash {
		if h, err := password.Hash(pw); err == nil {
			return true, h
		}
	}
	return true, ""
}

// selfRegistration configures dynamic client registration and client
// metadata documents on iss from cfg.
func selfRegistration(iss *issuer.Handler, cfg config.Config, secrets *secret.Hasher, log *slog.Logger) error {
	iss.SelfRegistered = issuer.ClientPolicy{Scopes: cfg.RegistrationScopes, Audiences: cfg.RegistrationAudiences}
	if cfg.RegistrationOpen || cfg.RegistrationToken != "" {
		iss.Registration = &issuer.Registration{Open: cfg.RegistrationOpen}
		if cfg.RegistrationToken != "" {
			iss.Registration.InitialAccessTokens = [][]byte{secrets.Hash(secret.New(cfg.RegistrationToken))}
		}
	}
	if !cfg.ClientMetadataDocuments {
		return nil
	}
	docs := &issuer.ClientDocuments{UnsafeAllowLoopback: cfg.ClientMetadataUnsafeAllowLoopback}
	if docs.UnsafeAllowLoopback {
		// A test setting that nothing stops in production: say so at every
		// start, where the operator looks.
		log.Warn("UNSAFE: client-metadata-unsafe-allow-loopback is on: any client_id URL naming a loopback address makes this server " +
			"send requests to itself (server-side request forgery). It exists for tests; never use it in production")
	}
	if cfg.ClientMetadataCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientMetadataCAFile)
		if err != nil {
			return fmt.Errorf("server: client-metadata-ca-file: %w", err)
		}
		if docs.RootCAs, err = x509.SystemCertPool(); err != nil {
			docs.RootCAs = x509.NewCertPool()
		}
		if !docs.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("server: client-metadata-ca-file %s holds no PEM certificate", cfg.ClientMetadataCAFile)
		}
	}
	iss.ClientDocuments = docs
	return nil
}
