package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// clientColumns lists the clients columns in the order scanClient reads
// them.
const clientColumns = `id, name, secret_hash, auth_method, grant_types, scopes,
	default_scopes, audiences, redirect_uris, jwks, claims, access_token_ttl,
	dpop_bound, introspect, require_par, registration_token_hash,
	registered_open, created_at, updated_at`

const clientByIDSQL = `SELECT ` + clientColumns + ` FROM clients WHERE id = ?`

// scanClient reads one row selected with clientColumns. Empty lists, maps
// and byte slices read back as nil.
func scanClient(row interface{ Scan(...any) error }) (*sigil.Client, error) {
	var (
		c                                            sigil.Client
		grantTypes, scopes, defaultScopes, audiences string
		redirectURIs, claims                         string
		ttl, created, updated                        int64
	)
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.AuthMethod, &grantTypes, &scopes,
		&defaultScopes, &audiences, &redirectURIs, &c.JWKS, &claims, &ttl,
		&c.DPoPBound, &c.Introspect, &c.RequirePAR, &c.RegistrationTokenHash,
		&c.RegisteredOpen, &created, &updated)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		dst *[]string
		src string
	}{
		{&c.GrantTypes, grantTypes},
		{&c.Scopes, scopes},
		{&c.DefaultScopes, defaultScopes},
		{&c.Audiences, audiences},
		{&c.RedirectURIs, redirectURIs},
	} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("decode client %q: %w", c.ID, err)
		}
		if len(*f.dst) == 0 {
			*f.dst = nil
		}
	}
	if err := json.Unmarshal([]byte(claims), &c.Claims); err != nil {
		return nil, fmt.Errorf("decode client %q claims: %w", c.ID, err)
	}
	if len(c.Claims) == 0 {
		c.Claims = nil
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	if len(c.JWKS) == 0 {
		c.JWKS = nil
	}
	if len(c.RegistrationTokenHash) == 0 {
		c.RegistrationTokenHash = nil
	}
	c.AccessTokenTTL = time.Duration(ttl)
	c.CreatedAt, c.UpdatedAt = rowcodec.FromUnixNano(created), rowcodec.FromUnixNano(updated)
	return &c, nil
}

// CreateClient stores c and sets c.CreatedAt and c.UpdatedAt to the current
// time; ErrConflict if the ID exists. c is not modified on failure.
func (s *Store) CreateClient(ctx context.Context, c *sigil.Client) error {
	defer s.writing()()
	if c == nil || c.ID == "" {
		return errors.New("sqlite: create client: empty client ID")
	}
	r, err := rowcodec.EncodeClient(c)
	if err != nil {
		return fmt.Errorf("sqlite: create client %q: %w", c.ID, err)
	}
	now := s.now()
	res, err := s.wconn.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		c.ID, c.Name, c.SecretHash, c.AuthMethod, r.GrantTypes, r.Scopes,
		r.DefaultScopes, r.Audiences, r.RedirectURIs, c.JWKS, r.Claims, int64(c.AccessTokenTTL),
		c.DPoPBound, c.Introspect, c.RequirePAR, c.RegistrationTokenHash,
		c.RegisteredOpen, rowcodec.UnixNano(now), rowcodec.UnixNano(now))
	if err != nil {
		return fmt.Errorf("sqlite: create client %q: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create client %q: %w", c.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create client %q: %w", c.ID, sigil.ErrConflict)
	}
	c.CreatedAt, c.UpdatedAt = now, now
	return nil
}

// Client returns the client with the given ID; ErrNotFound if there is
// none.
func (s *Store) Client(ctx context.Context, id string) (*sigil.Client, error) {
	c, err := scanClient(s.clientStmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get client %q: %w", id, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get client %q: %w", id, err)
	}
	return c, nil
}

// Clients returns every client, ordered by ID (byte-wise, as Go compares
// strings).
func (s *Store) Clients(ctx context.Context) ([]*sigil.Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	defer rows.Close()
	var cs []*sigil.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list clients: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	return cs, nil
}

// UpdateClient replaces every field of the stored client c.ID except
// CreatedAt, moves UpdatedAt forward (to the current time, or a
// microsecond past the stored one if that is not earlier), and writes
// both timestamps back into c; ErrNotFound if absent.
func (s *Store) UpdateClient(ctx context.Context, c *sigil.Client) error {
	defer s.writing()()
	if c == nil {
		return errors.New("sqlite: update client: nil client")
	}
	err := s.updateClient(ctx, c, "")
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: update client %q: %w", c.ID, sigil.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: update client %q: %w", c.ID, err)
	}
	return nil
}

// UpdateClientIf is UpdateClient when the stored client is still the
// version c was read as (updated_at) with registration token hash
// registrationTokenHash; ErrConflict when it is not, ErrNotFound when
// there is no client c.ID. One statement decides: of several callers that
// read the same version, one succeeds.
func (s *Store) UpdateClientIf(ctx context.Context, c *sigil.Client, registrationTokenHash []byte) error {
	defer s.writing()()
	if c == nil {
		return errors.New("sqlite: update client: nil client")
	}
	err := s.updateClient(ctx, c, ` AND updated_at = ? AND ifnull(registration_token_hash, x'') = ifnull(?, x'')`,
		rowcodec.UnixNano(c.UpdatedAt), registrationTokenHash)
	if errors.Is(err, sql.ErrNoRows) {
		// Nothing matched: tell a changed client from a missing one. A
		// deletion between the two statements reads as a conflict, which
		// refuses the update all the same.
		var one int
		err = s.wconn.QueryRowContext(ctx, `SELECT 1 FROM clients WHERE id = ?`, c.ID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: update client %q: %w", c.ID, sigil.ErrNotFound)
		}
		if err == nil {
			err = sigil.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: update client %q: %w", c.ID, err)
	}
	return nil
}

// updateClient runs the UPDATE of UpdateClient with cond and its
// arguments added to the WHERE clause, and writes the stored timestamps
// back into c; sql.ErrNoRows when no row matched. The caller holds the
// write lock.
func (s *Store) updateClient(ctx context.Context, c *sigil.Client, cond string, condArgs ...any) error {
	r, err := rowcodec.EncodeClient(c)
	if err != nil {
		return err
	}
	args := append([]any{c.Name, c.SecretHash, c.AuthMethod, r.GrantTypes, r.Scopes,
		r.DefaultScopes, r.Audiences, r.RedirectURIs, c.JWKS, r.Claims,
		int64(c.AccessTokenTTL), c.DPoPBound, c.Introspect, c.RequirePAR,
		c.RegistrationTokenHash, c.RegisteredOpen, rowcodec.UnixNano(s.now()), c.ID}, condArgs...)
	var created, updated int64
	// updated_at moves forward by a microsecond at least (the stores'
	// resolution), even under a fixed or stepped-back clock: each version
	// of a client has its own, which UpdateClientIf compares.
	err = s.wconn.QueryRowContext(ctx, `UPDATE clients SET
		name = ?, secret_hash = ?, auth_method = ?, grant_types = ?, scopes = ?,
		default_scopes = ?, audiences = ?, redirect_uris = ?, jwks = ?, claims = ?,
		access_token_ttl = ?, dpop_bound = ?, introspect = ?, require_par = ?,
		registration_token_hash = ?, registered_open = ?, updated_at = max(?, updated_at + 1000)
		WHERE id = ?`+cond+` RETURNING created_at, updated_at`, args...).Scan(&created, &updated)
	if err != nil {
		return err
	}
	c.CreatedAt, c.UpdatedAt = rowcodec.FromUnixNano(created), rowcodec.FromUnixNano(updated)
	return nil
}

// DeleteClient removes the client with the given ID; ErrNotFound if
// absent.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	defer s.writing()()
	res, err := s.wconn.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete client %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete client %q: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: delete client %q: %w", id, sigil.ErrNotFound)
	}
	return nil
}
