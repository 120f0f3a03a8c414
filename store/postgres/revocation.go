package postgres

import (
	"context"
	"time"

	sigil "github.com/sigil-sts/sigil"
)

// revokedSQL answers Revoked in one statement. Parameters: $1 jti, $2
// client_id, $3 subject, $4 iat in unix seconds. Each arm is a lookup on
// the (kind, value) primary key, guarded by its parameter being non-empty:
// an empty token field matches nothing, not even a revocation stored with
// an empty value. Cutoff and iat are whole seconds, so a token issued in
// the same second as the cutoff is revoked (iat is a NumericDate, RFC 7519
// §2; see sigil.Revocation).
const revokedSQL = `SELECT EXISTS (
	SELECT 1 FROM revocations WHERE $1::text <> '' AND kind = 'jti' AND value = $1::text
	UNION ALL
	SELECT 1 FROM revocations WHERE $2::text <> '' AND kind = 'client' AND value = $2::text AND cutoff >= $4::bigint
	UNION ALL
	SELECT 1 FROM revocations WHERE $3::text <> '' AND kind = 'subject' AND value = $3::text AND cutoff >= $4::bigint
)`

// Revoke records r. Revoking the same (kind, value) again keeps the later
// cutoff and the later expiry, so a revocation only ever widens, also when
// several nodes revoke at once. Cutoff and ExpiresAt are stored in whole
// seconds. An unknown kind or an empty value is an error: an empty value
// could never match a token. So is a value PostgreSQL cannot store (NUL,
// invalid UTF-8).
func (s *Store) Revoke(ctx context.Context, r sigil.Revocation) error {
	switch r.Kind {
	case sigil.RevokeJTI, sigil.RevokeClient, sigil.RevokeSubject:
	default:
		return errorf("postgres: revoke %q: unknown kind %q", r.Value, r.Kind)
	}
	if r.Value == "" {
		return errorf("postgres: revoke %s: empty value", r.Kind)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO revocations (kind, value, cutoff, expires_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, value) DO UPDATE SET
			cutoff = greatest(revocations.cutoff, excluded.cutoff),
			expires_at = greatest(revocations.expires_at, excluded.expires_at)`,
		string(r.Kind), r.Value, r.Cutoff.Unix(), r.ExpiresAt.Unix())
	if err != nil {
		return errorf("postgres: revoke %s %q: %w", r.Kind, r.Value, err)
	}
	return nil
}

// Revoked reports whether a stored revocation matches t: its JTI, or its
// ClientID or Subject with a cutoff at or after t.IssuedAt (in whole
// seconds). Empty fields of t match nothing, and so do fields PostgreSQL
// could not have stored (NUL, invalid UTF-8), which are checked as empty
// rather than sent to fail the query. A zero IssuedAt lies before every
// cutoff, so a token without iat counts as revoked by any client or
// subject revocation that names it: the check fails closed.
func (s *Store) Revoked(ctx context.Context, t sigil.TokenRef) (bool, error) {
	var revoked bool
	err := s.pool.QueryRow(ctx, revokedSQL,
		matchable(t.JTI), matchable(t.ClientID), matchable(t.Subject), t.IssuedAt.Unix()).Scan(&revoked)
	if err != nil {
		return false, errorf("postgres: check revocation: %w", err)
	}
	return revoked, nil
}

// matchable returns v, or "" (which matches nothing) if no stored value
// can equal it.
func matchable(v string) string {
	if !storable(v) {
		return ""
	}
	return v
}

// PurgeRevocations deletes the records whose expiry lies before now, in
// whole seconds, and returns how many it deleted.
func (s *Store) PurgeRevocations(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE expires_at < $1`, now.Unix())
	if err != nil {
		return 0, errorf("postgres: purge revocations: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
