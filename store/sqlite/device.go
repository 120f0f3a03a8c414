package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sigil "github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/store/internal/rowcodec"
)

// Device authorizations (RFC 8628, migration 0012). Errors do not quote
// the keyed hashes that identify them.

// deviceColumns lists the device_authorizations columns in the order
// scanDevice reads them.
const deviceColumns = `device_hash, user_code_hash, client_id, scopes, audience, created_at,
	expires_at, interval_ns, last_poll, state, user_id, decided_at, auth_time, amr, acr,
	session_id, redeemed_at, access_jti, refresh_family`

// nullTime is t as a nullable column: NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return rowcodec.UnixNano(t)
}

func fromNullTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return rowcodec.FromUnixNano(n.Int64)
}

// scanDevice reads one row selected with deviceColumns.
func scanDevice(row scanner) (*sigil.DeviceAuthorization, error) {
	var (
		d                                     sigil.DeviceAuthorization
		scopes, audience, amr                 []byte
		created, expires, interval            int64
		lastPoll, decided, authTime, redeemed sql.NullInt64
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
	if redeemed.Valid {
		d.Redemption = &sigil.Redemption{At: fromNullTime(redeemed), AccessJTI: accessJTI, RefreshFamily: family}
	}
	return &d, nil
}

// CreateDevice stores a new, pending device authorization (its State,
// decision and Redemption are ignored); ErrConflict if either hash
// exists.
func (s *Store) CreateDevice(ctx context.Context, d *sigil.DeviceAuthorization) error {
	defer s.writing()()
	if d == nil || d.DeviceCodeHash == "" || d.UserCodeHash == "" {
		return errors.New("sqlite: create device authorization: empty code hash")
	}
	_, err := s.wconn.ExecContext(ctx, `INSERT INTO device_authorizations (device_hash, user_code_hash,
		client_id, scopes, audience, created_at, expires_at, interval_ns, last_poll, state, user_id,
		amr, acr, session_id, access_jti, refresh_family)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', '', '[]', '', '', '', '')`,
		d.DeviceCodeHash, d.UserCodeHash, d.ClientID, rowcodec.EncodeList(d.Scopes), rowcodec.EncodeList(d.Audience),
		rowcodec.UnixNano(d.CreatedAt), rowcodec.UnixNano(d.ExpiresAt), int64(d.Interval), nullTime(d.LastPoll))
	if isConstraint(err) {
		return fmt.Errorf("sqlite: create device authorization for client %q: %w", d.ClientID, sigil.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create device authorization for client %q: %w", d.ClientID, err)
	}
	return nil
}

// DeviceByUserCode returns the live, pending authorization with user
// code hash userCodeHash; ErrNotFound for any other.
func (s *Store) DeviceByUserCode(ctx context.Context, userCodeHash string) (*sigil.DeviceAuthorization, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
		WHERE user_code_hash = ? AND state = 'pending' AND expires_at > ?`, userCodeHash, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get device authorization: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get device authorization: %w", err)
	}
	return d, nil
}

// DecideDevice moves a live, pending authorization to approved or
// denied, in one UPDATE conditional on pending: of concurrent decisions
// exactly one changes the row. A zero dec.At is set to the current time.
func (s *Store) DecideDevice(ctx context.Context, userCodeHash string, dec sigil.DeviceDecision) (*sigil.DeviceAuthorization, error) {
	defer s.writing()()
	if dec.At.IsZero() {
		dec.At = s.now()
	}
	state := sigil.DeviceDenied
	if dec.Approve {
		state = sigil.DeviceApproved
	}
	d, err := scanDevice(s.wconn.QueryRowContext(ctx, `UPDATE device_authorizations
		SET state = ?, user_id = ?, decided_at = ?, auth_time = ?, amr = ?, acr = ?, session_id = ?
		WHERE user_code_hash = ? AND state = 'pending' AND expires_at > ?
		RETURNING `+deviceColumns,
		string(state), dec.UserID, rowcodec.UnixNano(dec.At), nullTime(dec.AuthTime), rowcodec.EncodeList(dec.AMR),
		dec.ACR, dec.SessionID, userCodeHash, rowcodec.UnixNano(s.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: decide device authorization: %w", sigil.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: decide device authorization: %w", err)
	}
	return d, nil
}

// PollDevice applies p to the authorization of client clientID in one
// write transaction, which SQLite runs alone among every process on the
// file (BEGIN IMMEDIATE): of concurrent polls of an approved
// authorization exactly one redeems it. A zero p.At is set to the
// current time.
func (s *Store) PollDevice(ctx context.Context, deviceCodeHash, clientID string, p sigil.DevicePoll) (*sigil.DeviceAuthorization, sigil.DevicePollOutcome, error) {
	defer s.writing()()
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
	err := inTx(ctx, s.wconn, func(tx *sql.Tx) error {
		d, err := scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
			WHERE device_hash = ? AND client_id = ?`, deviceCodeHash, clientID))
		if errors.Is(err, sql.ErrNoRows) {
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
		var redeemedAt any
		var jti, family string
		if next.Redemption != nil {
			redeemedAt, jti, family = rowcodec.UnixNano(next.Redemption.At), next.Redemption.AccessJTI, next.Redemption.RefreshFamily
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_authorizations
			SET last_poll = ?, interval_ns = ?, state = ?, redeemed_at = ?, access_jti = ?, refresh_family = ?
			WHERE device_hash = ?`,
			nullTime(next.LastPoll), int64(next.Interval), string(next.State), redeemedAt, jti, family, deviceCodeHash)
		if err != nil {
			return err
		}
		out, outcome = &next, oc
		return nil
	})
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("sqlite: poll device authorization of client %q: %w", clientID, err)
	case replay:
		return out, 0, fmt.Errorf("sqlite: poll device authorization of client %q: %w", clientID, sigil.ErrReplay)
	}
	return out, outcome, nil
}
