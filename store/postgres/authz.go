package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// The authorization code flow's state (migrations 0003 and 0006), with the
// semantics of the SQLite store's: a record is live while its expiry lies
// after s.Now(), and PurgeAuthz deletes it once its expiry lies before
// the instant it is given. Lookups by a string PostgreSQL could not have
// stored (NUL, invalid UTF-8) find nothing. Errors do not quote the keyed
// hashes that identify sessions, codes and pushed requests.

// CreateSession stores a new session; ErrConflict if the ID exists.
func (s *Store) CreateSession(ctx context.Context, se *sigil.Session) error {
	if se == nil || se.ID == "" {
		return errors.New("postgres: create session: empty session ID")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, user_id, auth_time, amr, expires_at)
		VALUES ($1, $2, $3, $4, $5)`,
		se.ID, se.UserID, rowcodec.UnixNano(se.AuthTime), rowcodec.EncodeList(se.AMR),
		rowcodec.UnixNano(se.ExpiresAt))
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: create session: %w", sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create session: %w", err)
	}
	return nil
}

// Session returns a live session; ErrNotFound if it is absent or expired.
func (s *Store) Session(ctx context.Context, id string) (*sigil.Session, error) {
	if !storable(id) {
		return nil, errorf("postgres: get session: %w", sigil.ErrNotFound)
	}
	var (
		se                  = sigil.Session{ID: id}
		amr                 []byte
		authTime, expiresAt int64
	)
	err := s.pool.QueryRow(ctx, `SELECT user_id, auth_time, amr, expires_at FROM sessions
		WHERE id = $1 AND expires_at > $2`, id, rowcodec.UnixNano(s.Now())).
		Scan(&se.UserID, &authTime, &amr, &expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get session: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get session: %w", err)
	}
	if se.AMR, err = rowcodec.DecodeList(amr); err != nil {
		return nil, errorf("postgres: get session: decode amr: %w", err)
	}
	se.AuthTime, se.ExpiresAt = rowcodec.FromUnixNano(authTime), rowcodec.FromUnixNano(expiresAt)
	return &se, nil
}

// DeleteSession ends a session; deleting an absent one is no error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if !storable(id) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return errorf("postgres: delete session: %w", err)
	}
	return nil
}

// DeleteSessions ends every session of a user, in one statement, and
// returns how many of them were live: expired sessions not yet purged are
// deleted too, but were already ended, as Session reads them.
func (s *Store) DeleteSessions(ctx context.Context, userID string) (int, error) {
	if !storable(userID) {
		return 0, nil
	}
	rows, err := s.pool.Query(ctx, `DELETE FROM sessions WHERE user_id = $1
		RETURNING expires_at > $2`, userID, rowcodec.UnixNano(s.Now()))
	if err != nil {
		return 0, errorf("postgres: delete sessions of %q: %w", userID, err)
	}
	live, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		return 0, errorf("postgres: delete sessions of %q: %w", userID, err)
	}
	n := 0
	for _, l := range live {
		if l {
			n++
		}
	}
	return n, nil
}

// codeColumns lists the auth_codes columns in the order scanCode reads
// them.
const codeColumns = `hash, client_id, user_id, redirect_uri, scopes, audience, nonce,
	code_challenge, auth_time, amr, acr, session_id, expires_at,
	redeemed_at, access_jti, refresh_family, authorization_details`

// scanCode reads one row selected with codeColumns. Empty lists read back
// as nil; Redemption is nil unless the code was redeemed.
func scanCode(row pgx.Row) (*sigil.AuthCode, error) {
	var (
		c                     sigil.AuthCode
		scopes, audience, amr []byte
		authTime, expiresAt   int64
		redeemedAt            *int64
		accessJTI, familyID   *string
	)
	err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &scopes, &audience, &c.Nonce,
		&c.CodeChallenge, &authTime, &amr, &c.ACR, &c.SessionID, &expiresAt,
		&redeemedAt, &accessJTI, &familyID, &c.AuthorizationDetails)
	if err != nil {
		return nil, err
	}
	if c.Scopes, c.Audience, c.AMR, err = decodeLists(scopes, audience, amr); err != nil {
		return nil, fmt.Errorf("decode code: %w", err)
	}
	c.AuthTime, c.ExpiresAt = rowcodec.FromUnixNano(authTime), rowcodec.FromUnixNano(expiresAt)
	if redeemedAt != nil {
		c.Redemption = &sigil.Redemption{At: rowcodec.FromUnixNano(*redeemedAt)}
		if accessJTI != nil {
			c.Redemption.AccessJTI = *accessJTI
		}
		if familyID != nil {
			c.Redemption.RefreshFamily = *familyID
		}
	}
	return &c, nil
}

// decodeLists decodes the scopes, audience and amr columns that codes and
// refresh families share.
func decodeLists(scopes, audience, amr []byte) (s, aud, a []string, err error) {
	if s, err = rowcodec.DecodeList(scopes); err != nil {
		return nil, nil, nil, fmt.Errorf("scopes: %w", err)
	}
	if aud, err = rowcodec.DecodeList(audience); err != nil {
		return nil, nil, nil, fmt.Errorf("audience: %w", err)
	}
	if a, err = rowcodec.DecodeList(amr); err != nil {
		return nil, nil, nil, fmt.Errorf("amr: %w", err)
	}
	return s, aud, a, nil
}

// CreateCode stores a new, unredeemed authorization code (c.Redemption is
// ignored); ErrConflict if the hash exists.
func (s *Store) CreateCode(ctx context.Context, c *sigil.AuthCode) error {
	if c == nil || c.Hash == "" {
		return errors.New("postgres: create code: empty code hash")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (hash, client_id, user_id,
		redirect_uri, scopes, audience, nonce, code_challenge, auth_time, amr, acr,
		session_id, expires_at, authorization_details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, rowcodec.EncodeList(c.Scopes),
		rowcodec.EncodeList(c.Audience), c.Nonce, c.CodeChallenge, rowcodec.UnixNano(c.AuthTime),
		rowcodec.EncodeList(c.AMR), c.ACR, c.SessionID, rowcodec.UnixNano(c.ExpiresAt), c.AuthorizationDetails)
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: create code for client %q: %w", c.ClientID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create code for client %q: %w", c.ClientID, err)
	}
	return nil
}

// RedeemCode marks an unexpired, unredeemed code of client clientID
// redeemed with r and returns it. A code redeemed before is returned with
// its first Redemption and ErrReplay, expired or not, until PurgeAuthz
// deletes it; ErrNotFound if the code is absent, expired and unredeemed,
// or another client's. A zero r.At is set to the current time.
//
// The client is part of both statements' WHERE clauses: another client's
// code, redeemed or not, reads as absent and is left as it was, so a
// client that learnt someone else's code can neither spend it nor, by
// replaying it, have the tokens issued from it revoked.
//
// The redemption is one UPDATE whose WHERE clause requires the code to be
// unredeemed. Of concurrent redemptions on any nodes, one locks the row
// and the others wait for it, then find the row redeemed and change
// nothing; they read it back as a replay.
func (s *Store) RedeemCode(ctx context.Context, hash, clientID string, r sigil.Redemption) (*sigil.AuthCode, error) {
	if !storable(hash) || !storable(clientID) {
		return nil, errorf("postgres: redeem code of client %q: %w", clientID, sigil.ErrNotFound)
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	c, err := scanCode(s.pool.QueryRow(ctx, `UPDATE auth_codes
		SET redeemed_at = $1, access_jti = $2, refresh_family = $3
		WHERE hash = $4 AND client_id = $5 AND redeemed_at IS NULL AND expires_at > $6
		RETURNING `+codeColumns,
		rowcodec.UnixNano(r.At), r.AccessJTI, r.RefreshFamily, hash, clientID, rowcodec.UnixNano(s.Now())))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: redeem code of client %q: %w", clientID, err)
	}
	// Redeemed before, or expired, or absent, or another client's: a
	// redeemed code never becomes unredeemed, so this read cannot
	// contradict the update.
	c, err = scanCode(s.pool.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes
		WHERE hash = $1 AND client_id = $2 AND redeemed_at IS NOT NULL`, hash, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: redeem code of client %q: %w", clientID, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: redeem code of client %q: %w", clientID, err)
	}
	return c, errorf("postgres: redeem code of client %q: %w", clientID, sigil.ErrReplay)
}

// SaveConsent stores c, replacing the user's consent for the client.
func (s *Store) SaveConsent(ctx context.Context, c *sigil.Consent) error {
	if c == nil {
		return errors.New("postgres: save consent: nil consent")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, audience, granted_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = excluded.scopes, audience = excluded.audience, granted_at = excluded.granted_at`,
		c.UserID, c.ClientID, rowcodec.EncodeList(c.Scopes), rowcodec.EncodeList(c.Audience),
		rowcodec.UnixNano(c.GrantedAt))
	if err != nil {
		return errorf("postgres: save consent of %q for %q: %w", c.UserID, c.ClientID, err)
	}
	return nil
}

// consentColumns lists the consents columns in the order scanConsent reads
// them.
const consentColumns = `user_id, client_id, scopes, audience, granted_at`

// scanConsent reads one row selected with consentColumns. Empty lists read
// back as nil.
func scanConsent(row pgx.Row) (*sigil.Consent, error) {
	var (
		c                sigil.Consent
		scopes, audience []byte
		granted          int64
	)
	if err := row.Scan(&c.UserID, &c.ClientID, &scopes, &audience, &granted); err != nil {
		return nil, err
	}
	var err error
	if c.Scopes, err = rowcodec.DecodeList(scopes); err != nil {
		return nil, fmt.Errorf("decode consent scopes: %w", err)
	}
	if c.Audience, err = rowcodec.DecodeList(audience); err != nil {
		return nil, fmt.Errorf("decode consent audience: %w", err)
	}
	c.GrantedAt = rowcodec.FromUnixNano(granted)
	return &c, nil
}

// Consent returns the user's consent for a client; ErrNotFound if there
// is none.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (*sigil.Consent, error) {
	if !storable(userID) || !storable(clientID) {
		return nil, errorf("postgres: get consent of %q for %q: %w", userID, clientID, sigil.ErrNotFound)
	}
	c, err := scanConsent(s.pool.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = $1 AND client_id = $2`, userID, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get consent of %q for %q: %w", userID, clientID, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get consent of %q for %q: %w", userID, clientID, err)
	}
	return c, nil
}

// Consents returns every consent of a user, ordered by client ID
// (byte-wise: the column has the C collation).
func (s *Store) Consents(ctx context.Context, userID string) ([]*sigil.Consent, error) {
	if !storable(userID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = $1 ORDER BY client_id`, userID)
	if err != nil {
		return nil, errorf("postgres: list consents of %q: %w", userID, err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sigil.Consent, error) {
		return scanConsent(row)
	})
	if err != nil {
		return nil, errorf("postgres: list consents of %q: %w", userID, err)
	}
	return cs, nil
}

// DeleteConsent forgets a consent; ErrNotFound if absent.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	if !storable(userID) || !storable(clientID) {
		return errorf("postgres: delete consent of %q for %q: %w", userID, clientID, sigil.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return errorf("postgres: delete consent of %q for %q: %w", userID, clientID, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: delete consent of %q for %q: %w", userID, clientID, sigil.ErrNotFound)
	}
	return nil
}

// PushRequest stores a pushed authorization request; ErrConflict if the
// hash exists.
func (s *Store) PushRequest(ctx context.Context, p *sigil.PushedRequest) error {
	if p == nil || p.Hash == "" {
		return errors.New("postgres: push request: empty request hash")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pushed_requests (hash, client_id, params, expires_at)
		VALUES ($1, $2, $3, $4)`, p.Hash, p.ClientID, p.Params, rowcodec.UnixNano(p.ExpiresAt))
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: push request of client %q: %w", p.ClientID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: push request of client %q: %w", p.ClientID, err)
	}
	return nil
}

// TakePushedRequest deletes a live pushed request of client clientID and
// returns it, in one statement: of concurrent takes on any nodes, one
// deletes the row and the others wait for it and then find nothing,
// ErrNotFound as for an absent or expired request. Another client's
// request is ErrNotFound too, and stays: presenting someone else's
// request_uri does not use it up.
func (s *Store) TakePushedRequest(ctx context.Context, hash, clientID string) (*sigil.PushedRequest, error) {
	if !storable(hash) || !storable(clientID) {
		return nil, errorf("postgres: take pushed request of client %q: %w", clientID, sigil.ErrNotFound)
	}
	p := sigil.PushedRequest{Hash: hash, ClientID: clientID}
	var expiresAt int64
	err := s.pool.QueryRow(ctx, `DELETE FROM pushed_requests
		WHERE hash = $1 AND client_id = $2 AND expires_at > $3
		RETURNING params, expires_at`, hash, clientID, rowcodec.UnixNano(s.Now())).
		Scan(&p.Params, &expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: take pushed request of client %q: %w", clientID, sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: take pushed request of client %q: %w", clientID, err)
	}
	p.ExpiresAt = rowcodec.FromUnixNano(expiresAt)
	return &p, nil
}

// redeemedCodeGrace is how long past its expiry PurgeAuthz keeps a
// redeemed code, so that a late replay is still caught (RFC 6749 §4.1.2)
// and the tokens issued from it revoked.
const redeemedCodeGrace = time.Hour

// PurgeAuthz deletes, in one transaction, the sessions, unredeemed codes
// and pushed requests whose expiry lies before now, the redeemed codes
// whose expiry lies more than an hour before now, the refresh families
// whose ExpiresAt lies before now (placeholders an hour after their
// revocation) with their access tokens, and the access tokens whose
// expiry lies before now, and the device authorizations whose expiry
// lies more than an hour before now (late polls still read
// expired_token, replays still invalid_grant), and returns how many
// records it deleted, access tokens not counted. Consents do not expire.
func (s *Store) PurgeAuthz(ctx context.Context, now time.Time) (int, error) {
	cutoff, codeCutoff := rowcodec.UnixNano(now), rowcodec.UnixNano(now.Add(-redeemedCodeGrace))
	var total int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for _, d := range []struct {
			query string
			args  []any
		}{
			{`DELETE FROM sessions WHERE expires_at < $1`, []any{cutoff}},
			{`DELETE FROM auth_codes WHERE expires_at < $1 AND (redeemed_at IS NULL OR expires_at < $2)`, []any{cutoff, codeCutoff}},
			{`DELETE FROM pushed_requests WHERE expires_at < $1`, []any{cutoff}},
			{`DELETE FROM device_authorizations WHERE expires_at < $1`, []any{codeCutoff}},
		} {
			tag, err := tx.Exec(ctx, d.query, d.args...)
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
		}
		n, err := deleteFamilies(ctx, tx, `expires_at < $1`, cutoff)
		if err != nil {
			return err
		}
		total += n
		_, err = tx.Exec(ctx, `DELETE FROM refresh_access WHERE expires_at < $1`, cutoff)
		return err
	})
	if err != nil {
		return 0, errorf("postgres: purge authorization state: %w", err)
	}
	return int(total), nil
}
