package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// clientColumns lists the clients columns in the order scanClient reads
// them.
const clientColumns = `id, name, secret_hash, auth_method, grant_types, scopes,
	default_scopes, audiences, redirect_uris, jwks, claims, access_token_ttl,
	dpop_bound, introspect, require_par, registration_token_hash,
	registered_open, created_at, updated_at`

// scanClient reads one row selected with clientColumns. Empty lists, maps
// and byte slices read back as nil, as in the SQLite store.
func scanClient(row pgx.Row) (*sigil.Client, error) {
	var (
		c                                            sigil.Client
		grantTypes, scopes, defaultScopes, audiences []byte
		redirectURIs, claims                         []byte
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
		src []byte
	}{
		{&c.GrantTypes, grantTypes},
		{&c.Scopes, scopes},
		{&c.DefaultScopes, defaultScopes},
		{&c.Audiences, audiences},
		{&c.RedirectURIs, redirectURIs},
	} {
		if err := json.Unmarshal(f.src, f.dst); err != nil {
			return nil, fmt.Errorf("decode client %q: %w", c.ID, err)
		}
		if len(*f.dst) == 0 {
			*f.dst = nil
		}
	}
	if err := json.Unmarshal(claims, &c.Claims); err != nil {
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

// uniqueViolation reports whether err is a unique or primary-key
// violation (SQLSTATE 23505) and names the constraint or index violated.
func uniqueViolation(err error) (constraint string, ok bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// storable reports whether a TEXT column can hold s: PostgreSQL refuses
// NUL and invalid UTF-8 where SQLite stores any bytes. A string it cannot
// store equals no stored value, so lookups by such a string (a client_id
// or a token's claims, all attacker-controlled) find nothing instead of
// failing with a database error.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// CreateClient stores c and sets c.CreatedAt and c.UpdatedAt to the current
// time; ErrConflict if the ID exists, also when another node creates it at
// the same moment. c is not modified on failure. Text PostgreSQL cannot
// store (NUL, invalid UTF-8), in a claim string too, is an error.
func (s *Store) CreateClient(ctx context.Context, c *sigil.Client) error {
	if c == nil || c.ID == "" {
		return errors.New("postgres: create client: empty client ID")
	}
	r, err := rowcodec.EncodeClient(c)
	if err != nil {
		return errorf("postgres: create client %q: %w", c.ID, err)
	}
	now := s.now()
	// A plain INSERT rather than ON CONFLICT DO NOTHING: the failed
	// statement rolls back, so a refused create does not move the change
	// counter (its trigger runs once per statement, rows or no rows).
	_, err = s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		c.ID, c.Name, c.SecretHash, c.AuthMethod, r.GrantTypes, r.Scopes,
		r.DefaultScopes, r.Audiences, r.RedirectURIs, c.JWKS, r.Claims, int64(c.AccessTokenTTL),
		c.DPoPBound, c.Introspect, c.RequirePAR, c.RegistrationTokenHash,
		c.RegisteredOpen, rowcodec.UnixNano(now), rowcodec.UnixNano(now))
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: create client %q: %w", c.ID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create client %q: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt = now, now
	return nil
}

// Client returns the client with the given ID; ErrNotFound if there is
// none.
func (s *Store) Client(ctx context.Context, id string) (*sigil.Client, error) {
	if !storable(id) {
		return nil, errorf("postgres: get client %q: %w", id, sigil.ErrNotFound)
	}
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get client %q: %w", id, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get client %q: %w", id, err)
	}
	return c, nil
}

// Clients returns every client, ordered by ID (byte-wise, as Go compares
// strings: the id column has the C collation whatever the database's).
func (s *Store) Clients(ctx context.Context) ([]*sigil.Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, errorf("postgres: list clients: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sigil.Client, error) {
		return scanClient(row)
	})
	if err != nil {
		return nil, errorf("postgres: list clients: %w", err)
	}
	return cs, nil
}

// UpdateClient replaces every field of the stored client c.ID except
// CreatedAt, moves UpdatedAt forward (to the current time, or a
// microsecond past the stored one if that is not earlier), and writes
// both timestamps back into c; ErrNotFound if absent.
func (s *Store) UpdateClient(ctx context.Context, c *sigil.Client) error {
	if c == nil {
		return errors.New("postgres: update client: nil client")
	}
	if !storable(c.ID) {
		return errorf("postgres: update client %q: %w", c.ID, sigil.ErrNotFound)
	}
	err := updateClient(ctx, s.pool, c, s.now(), "")
	if errors.Is(err, pgx.ErrNoRows) {
		return errorf("postgres: update client %q: %w", c.ID, sigil.ErrNotFound)
	}
	if err != nil {
		return errorf("postgres: update client %q: %w", c.ID, err)
	}
	return nil
}

// UpdateClientIf is UpdateClient when the stored client is still the
// version c was read as (updated_at) with registration token hash
// registrationTokenHash; ErrConflict when it is not, ErrNotFound when
// there is no client c.ID. The UPDATE's row lock decides between
// concurrent callers on every node: of several that read the same
// version, one succeeds. A refused update rolls back, so it does not move
// the change counter (whose trigger runs once per statement).
func (s *Store) UpdateClientIf(ctx context.Context, c *sigil.Client, registrationTokenHash []byte) error {
	if c == nil {
		return errors.New("postgres: update client: nil client")
	}
	if !storable(c.ID) {
		return errorf("postgres: update client %q: %w", c.ID, sigil.ErrNotFound)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := updateClient(ctx, tx, c, s.now(),
			` AND updated_at = $19 AND coalesce(registration_token_hash, ''::bytea) = coalesce($20::bytea, ''::bytea)`,
			rowcodec.UnixNano(c.UpdatedAt), registrationTokenHash)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM clients WHERE id = $1)`, c.ID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return sigil.ErrNotFound
		}
		return sigil.ErrConflict
	})
	if err != nil {
		return errorf("postgres: update client %q: %w", c.ID, err)
	}
	return nil
}

// updateClient runs the UPDATE of UpdateClient on q with cond (whose
// parameters start at $19) and condArgs added to the WHERE clause, and
// writes the stored timestamps back into c; pgx.ErrNoRows when no row
// matched. updated_at moves forward by a microsecond at least (the
// stores' resolution), even under a fixed or stepped-back clock: each
// version of a client has its own, which UpdateClientIf compares.
func updateClient(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, c *sigil.Client, now time.Time, cond string, condArgs ...any) error {
	r, err := rowcodec.EncodeClient(c)
	if err != nil {
		return err
	}
	args := append([]any{c.Name, c.SecretHash, c.AuthMethod, r.GrantTypes, r.Scopes,
		r.DefaultScopes, r.Audiences, r.RedirectURIs, c.JWKS, r.Claims,
		int64(c.AccessTokenTTL), c.DPoPBound, c.Introspect, c.RequirePAR,
		c.RegistrationTokenHash, c.RegisteredOpen, rowcodec.UnixNano(now), c.ID}, condArgs...)
	var created, updated int64
	err = q.QueryRow(ctx, `UPDATE clients SET
		name = $1, secret_hash = $2, auth_method = $3, grant_types = $4, scopes = $5,
		default_scopes = $6, audiences = $7, redirect_uris = $8, jwks = $9, claims = $10,
		access_token_ttl = $11, dpop_bound = $12, introspect = $13, require_par = $14,
		registration_token_hash = $15, registered_open = $16, updated_at = greatest($17, updated_at + 1000)
		WHERE id = $18`+cond+` RETURNING created_at, updated_at`, args...).Scan(&created, &updated)
	if err != nil {
		return err
	}
	c.CreatedAt, c.UpdatedAt = rowcodec.FromUnixNano(created), rowcodec.FromUnixNano(updated)
	return nil
}

// DeleteClient removes the client with the given ID; ErrNotFound if
// absent.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if !storable(id) {
		return errorf("postgres: delete client %q: %w", id, sigil.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
	if err != nil {
		return errorf("postgres: delete client %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: delete client %q: %w", id, sigil.ErrNotFound)
	}
	return nil
}
