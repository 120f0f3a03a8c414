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

// Device authorizations (RFC 8628, migration 0008), with the semantics
// of the SQLite store's. Errors do not quote the keyed hashes that
// identify them.

// deviceColumns lists the device_authorizations columns in the order
// scanDevice reads them.
const deviceColumns = `device_hash, user_code_hash, client_id, scopes, audience, created_at,
	expires_at, interval_ns, last_poll, state, user_id, decided_at, auth_time, amr, acr,
	session_id, redeemed_at, access_jti, refresh_family`

// nullTime is t as a nullable column: NULL for the zero time.
func nullTime(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := rowcodec.UnixNano(t)
	return &n
}

func fromNullTime(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return rowcodec.FromUnixNano(*n)
}

// scanDevice reads one row selected with deviceColumns.
func scanDevice(row pgx.Row) (*sigil.DeviceAuthorization, error) {
	var (
		d                                     sigil.DeviceAuthorization
		scopes, audience, amr                 []byte
		created, expires, interval            int64
		lastPoll, decided, authTime, redeemed *int64
		state, accessJTI, family              string
	)
	err := row.Scan(&d.DeviceCodeHash, &d.UserCodeHash, &d.ClientID, &scopes, &audience, &created,
		&expires, &interval, &lastPoll, &state, &d.UserID, &decided, &authTime, &amr, &d.ACR,
		&d.SessionID, &redeemed, &accessJTI, &family)
	if err != nil {
		return nil, err
	}
	if d.Scopes, d.Audience, d.AMR, err = decodeLists(scopes, audience, amr); err != nil {
		return nil, fmt.Errorf("decode device authorization: %w", err)
	}
	d.State, d.Interval = sigil.DeviceState(state), time.Duration(interval)
	d.CreatedAt, d.ExpiresAt = rowcodec.FromUnixNano(created), rowcodec.FromUnixNano(expires)
	d.LastPoll, d.DecidedAt, d.AuthTime = fromNullTime(lastPoll), fromNullTime(decided), fromNullTime(authTime)
	if redeemed != nil {
		d.Redemption = &sigil.Redemption{At: fromNullTime(redeemed), AccessJTI: accessJTI, RefreshFamily: family}
	}
	return &d, nil
}

// CreateDevice stores a new, pending device authorization (its State,
// decision and Redemption are ignored); ErrConflict if either hash
// exists.
func (s *Store) CreateDevice(ctx context.Context, d *sigil.DeviceAuthorization) error {
	if d == nil || d.DeviceCodeHash == "" || d.UserCodeHash == "" {
		return errors.New("postgres: create device authorization: empty code hash")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO device_authorizations (device_hash, user_code_hash,
		client_id, scopes, audience, created_at, expires_at, interval_ns, last_poll, state, user_id,
		amr, acr, session_id, access_jti, refresh_family)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', '', '[]', '', '', '', '')`,
		d.DeviceCodeHash, d.UserCodeHash, d.ClientID, rowcodec.EncodeList(d.Scopes), rowcodec.EncodeList(d.Audience),
		rowcodec.UnixNano(d.CreatedAt), rowcodec.UnixNano(d.ExpiresAt), int64(d.Interval), nullTime(d.LastPoll))
	if _, ok := uniqueViolation(err); ok {
		return errorf("postgres: create device authorization for client %q: %w", d.ClientID, sigil.ErrConflict)
	}
	if err != nil {
		return errorf("postgres: create device authorization for client %q: %w", d.ClientID, err)
	}
	return nil
}

// DeviceByUserCode returns the live, pending authorization with user
// code hash userCodeHash; ErrNotFound for any other.
func (s *Store) DeviceByUserCode(ctx context.Context, userCodeHash string) (*sigil.DeviceAuthorization, error) {
	if !storable(userCodeHash) {
		return nil, errorf("postgres: get device authorization: %w", sigil.ErrNotFound)
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
		WHERE user_code_hash = $1 AND state = 'pending' AND expires_at > $2`, userCodeHash, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: get device authorization: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: get device authorization: %w", err)
	}
	return d, nil
}

// DecideDevice moves a live, pending authorization to approved or
// denied, in one UPDATE conditional on pending: of concurrent decisions
// exactly one changes the row. A zero dec.At is set to the current time.
func (s *Store) DecideDevice(ctx context.Context, userCodeHash string, dec sigil.DeviceDecision) (*sigil.DeviceAuthorization, error) {
	if !storable(userCodeHash) {
		return nil, errorf("postgres: decide device authorization: %w", sigil.ErrNotFound)
	}
	if dec.At.IsZero() {
		dec.At = s.now()
	}
	state := sigil.DeviceDenied
	if dec.Approve {
		state = sigil.DeviceApproved
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `UPDATE device_authorizations
		SET state = $1, user_id = $2, decided_at = $3, auth_time = $4, amr = $5, acr = $6, session_id = $7
		WHERE user_code_hash = $8 AND state = 'pending' AND expires_at > $9
		RETURNING `+deviceColumns,
		string(state), dec.UserID, rowcodec.UnixNano(dec.At), nullTime(dec.AuthTime), rowcodec.EncodeList(dec.AMR),
		dec.ACR, dec.SessionID, userCodeHash, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: decide device authorization: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: decide device authorization: %w", err)
	}
	return d, nil
}

// PollDevice applies p to the authorization of client clientID in one
// transaction that reads the row FOR UPDATE: a concurrent poll, on any
// node, waits for this one and then reads its result, so of concurrent
// polls of an approved authorization exactly one redeems it. A zero p.At
// is set to the current time.
func (s *Store) PollDevice(ctx context.Context, deviceCodeHash, clientID string, p sigil.DevicePoll) (*sigil.DeviceAuthorization, sigil.DevicePollOutcome, error) {
	if !storable(deviceCodeHash) || !storable(clientID) {
		return nil, 0, errorf("postgres: poll device authorization of client %q: %w", clientID, sigil.ErrNotFound)
	}
	if p.At.IsZero() {
		p.At = s.now()
	}
	if p.Redemption.At.IsZero() {
		p.Redemption.At = p.At
	}
	var (
		out     *sigil.DeviceAuthorization
		outcome sigil.DevicePollOutcome
		replay  bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		d, err := scanDevice(tx.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
			WHERE device_hash = $1 AND client_id = $2 FOR UPDATE`, deviceCodeHash, clientID))
		if errors.Is(err, pgx.ErrNoRows) {
			return sigil.ErrNotFound
		}
		if err != nil {
			return err
		}
		if d.State == sigil.DeviceRedeemed {
			out, replay = d, true
			return nil
		}
		next, oc := d.Polled(p, s.Now())
		var (
			redeemedAt  *int64
			jti, family string
		)
		if next.Redemption != nil {
			redeemedAt, jti, family = nullTime(next.Redemption.At), next.Redemption.AccessJTI, next.Redemption.RefreshFamily
		}
		_, err = tx.Exec(ctx, `UPDATE device_authorizations
			SET last_poll = $1, interval_ns = $2, state = $3, redeemed_at = $4, access_jti = $5, refresh_family = $6
			WHERE device_hash = $7`,
			nullTime(next.LastPoll), int64(next.Interval), string(next.State), redeemedAt, jti, family, deviceCodeHash)
		if err != nil {
			return err
		}
		out, outcome = &next, oc
		return nil
	})
	switch {
	case err != nil:
		return nil, 0, errorf("postgres: poll device authorization of client %q: %w", clientID, err)
	case replay:
		return out, 0, errorf("postgres: poll device authorization of client %q: %w", clientID, sigil.ErrReplay)
	}
	return out, outcome, nil
}
