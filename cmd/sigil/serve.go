package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/sigil-sts/sigil/admin"
	"github.com/sigil-sts/sigil/secret"
	"github.com/sigil-sts/sigil/server"
)

func runServe(ctx context.Context, m *Main, o *options) error {
	log := slog.New(slog.NewJSONHandler(m.Stderr, nil))
	return m.serve(ctx, o, log, nil)
}

// serve runs a node until ctx ends (SIGINT or SIGTERM), then shuts down
// gracefully. started runs once the node accepts requests.
func (m *Main) serve(ctx context.Context, o *options, log *slog.Logger, started func(*server.Server) error) error {
	core, err := server.OpenCore(ctx, o.cfg)
	if err != nil {
		return err
	}
	srv, err := server.Start(ctx, core, log)
	if err != nil {
		core.Close()
		return err
	}
	log.Info("sigil ready", "issuer", srv.Issuer.Issuer, "listen", srv.PublicAddr(), "admin", srv.AdminAddr())
	if started != nil {
		if err := started(srv); err != nil {
			srv.Shutdown(context.Background())
			return err
		}
	}
	if m.Ready != nil {
		m.Ready(srv.PublicAddr(), srv.AdminAddr())
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.cfg.ShutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}

// demoClientName names the client `sigil dev` keeps for the quick start.
const demoClientName = "sigil-dev-demo"

func runDev(ctx context.Context, m *Main, o *options) error {
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return m.serve(ctx, o, log, func(srv *server.Server) error {
		c, err := demoClient(ctx, srv.Core.Admin)
		if err != nil {
			return err
		}
		pw, err := demoUser(ctx, srv.Core.Admin)
		if err != nil {
			return err
		}
		iss := srv.Issuer.Issuer
		fmt.Fprintf(m.Stdout, `Sigil is running (embedded store in %s).

  issuer       %s
  discovery    %s/.well-known/openid-configuration
  admin API    http://%s/admin/v1  (Bearer token in %s/admin-token)
  admin token  %s

Demo client (its secret is new on every start of sigil dev):
  client_id      %s
  client_secret  %s
  scopes         %s

Get a token:
  curl -s -u '%s:%s' -d grant_type=client_credentials -d scope=read %s/token

Sign in on Sigil's own pages (its password is new on every start too):
  page           %s/account
  username       %s
  password       %s

Press Ctrl-C to stop.
`, o.cfg.DataDir, iss, iss, srv.AdminAddr(), o.cfg.DataDir, srv.AdminToken.Reveal(),
			c.ClientID, c.ClientSecret, c.Scope,
			url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret), iss,
			iss, demoUsername, pw)
		return nil
	})
}

// demoUsername names the user `sigil dev` keeps for trying the sign-in
// pages.
const demoUsername = "demo"

// demoUser creates the demo user, or gives the existing one a new
// password, and returns the password.
func demoUser(ctx context.Context, svc *admin.Service) (string, error) {
	pw := secret.Generate().Reveal()[:16]
	if _, err := svc.User(ctx, demoUsername); err == nil {
		_, err := svc.SetPassword(ctx, demoUsername, pw)
		return pw, err
	}
	_, err := svc.CreateUser(ctx, admin.UserSpec{Username: demoUsername, Claims: map[string]any{
		"name": "Demo User", "email": "demo@example.com", "email_verified": true, "department": "engineering",
	}}, pw)
	return pw, err
}

// demoClient creates the demo client, or gives the existing one a new
// secret (the old one is stored only as a hash, so it cannot be shown).
func demoClient(ctx context.Context, svc *admin.Service) (*admin.ClientInfo, error) {
	cs, err := svc.Clients(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.Name == demoClientName {
			return svc.RotateSecret(ctx, c.ClientID)
		}
	}
	return svc.CreateClient(ctx, admin.ClientSpec{
		Name:         demoClientName,
		Scope:        strings.Join([]string{"read", "write"}, " "),
		DefaultScope: "read",
		Claims:       map[string]any{"department": "engineering", "clearance": "internal"},
	})
}
