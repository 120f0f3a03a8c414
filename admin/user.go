package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/audit"
	"github.com/sigil-sts/sigil/password"
	"github.com/sigil-sts/sigil/token"
)

// UserSpec is what an administrator sets on a new user besides the
// password.
type UserSpec struct {
	Username string         `json:"username"`
	Claims   map[string]any `json:"claims,omitempty"`
	Disabled bool           `json:"disabled,omitempty"`
}

// UserUpdate names the fields of a user to change; a nil field stays as it
// is. Claims replace the user's claims as a whole: an empty object clears
// them.
type UserUpdate struct {
	Username *string        `json:"username,omitempty"`
	Claims   map[string]any `json:"claims,omitempty"`
	Disabled *bool          `json:"disabled,omitempty"`
}

// UserInfo is a user as the CLI and API show it: never the password hash.
// Times are RFC 3339 in UTC, to the second.
type UserInfo struct {
	ID        string         `json:"id"`
	Username  string         `json:"username"`
	Claims    map[string]any `json:"claims"`
	Disabled  bool           `json:"disabled"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

func userInfo(u *sigil.User) *UserInfo {
	claims := u.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	return &UserInfo{ID: u.ID, Username: u.Username, Claims: claims, Disabled: u.Disabled,
		CreatedAt: u.CreatedAt.UTC().Truncate(time.Second), UpdatedAt: u.UpdatedAt.UTC().Truncate(time.Second)}
}

// MaxUsername is the longest username, in bytes (all ASCII).
const MaxUsername = 64

// MinPassword is the shortest password, in characters. The longest is
// password.MaxLength bytes.
const MinPassword = 8

// normaliseUsername lower-cases name and checks it: 1 to MaxUsername
// letters, digits, '.', '_', '-' and '@', starting with a letter or a
// digit. Restricting usernames to ASCII makes Unicode normalisation and
// look-alike characters moot; lower-casing makes "Alice" and "alice" one
// account.
func normaliseUsername(name string) (string, error) {
	// Only ASCII letters are lower-cased: strings.ToLower would map some
	// other letters (the Kelvin sign K) to ASCII ones, which the check
	// below would then accept.
	n := sigil.FoldUsername(name)
	if n == "" || len(n) > MaxUsername {
		return "", invalid("a username has 1 to %d characters", MaxUsername)
	}
	for i := range len(n) {
		c := n[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if i == 0 && !alnum {
			return "", invalid("username %q must start with a letter or a digit", name)
		}
		if !alnum && !strings.ContainsRune("._-@", rune(c)) {
			return "", invalid("username %q may hold only letters, digits, '.', '_', '-' and '@'", name)
		}
	}
	// User look-ups accept an ID or a username, ID first: a username of
	// that form would be shadowed by, or mistaken for, another user's ID.
	if looksLikeID(n) {
		return "", invalid("username %q has the form of a user ID; choose another", name)
	}
	return n, nil
}

// looksLikeID reports whether s has the form of newUserID's output.
func looksLikeID(s string) bool {
	return len(s) == 32 && strings.Trim(s, "0123456789abcdef") == ""
}

// newUserID returns an opaque user ID of the same form as client IDs (128
// random bits as lower-case hex): it is the sub of the user's tokens, so it
// reveals nothing and never changes when the username does.
func newUserID() string { return NewClientID() }

// checkPassword checks a new password: valid UTF-8 (what a sign-in form
// sends), MinPassword characters to password.MaxLength bytes.
func checkPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return invalid("the password is not valid UTF-8 text")
	case utf8.RuneCountInString(pw) < MinPassword:
		return invalid("a password has at least %d characters", MinPassword)
	case len(pw) > password.MaxLength:
		return invalid("a password has at most %d bytes", password.MaxLength)
	}
	return nil
}

// userRegistered are claims with protocol meaning in ID tokens (OpenID
// Connect Core §2, §3.1.3.6; RFC 7800) that token.Registered does not
// already list.
var userRegistered = []string{"at_hash", "c_hash", "sid", "s_hash"}

// claimKind is the JSON type an OpenID Connect standard claim must have
// (OpenID Connect Core §5.1), and groups, which is not standard but is
// read as a list of strings everywhere.
type claimKind int

const (
	claimString claimKind = iota
	claimBool
	claimNumber
	claimObject
	claimStrings
)

var knownClaims = map[string]claimKind{
	"name": claimString, "given_name": claimString, "family_name": claimString, "middle_name": claimString,
	"nickname": claimString, "preferred_username": claimString, "profile": claimString, "picture": claimString,
	"website": claimString, "email": claimString, "gender": claimString, "birthdate": claimString,
	"zoneinfo": claimString, "locale": claimString, "phone_number": claimString,
	"email_verified": claimBool, "phone_number_verified": claimBool,
	"updated_at": claimNumber, "address": claimObject, "groups": claimStrings,
}

var kindNames = map[claimKind]string{claimString: "a string", claimBool: "true or false",
	claimNumber: "a number", claimObject: "a JSON object", claimStrings: "an array of strings"}

func checkUserClaims(claims map[string]any) error {
	for k, v := range claims {
		if k == "" {
			return invalid("a claim needs a name")
		}
		if !storableText(k) || !storableValue(v) {
			return invalid("claim %q holds a NUL character or invalid UTF-8", k)
		}
		if k == "may_act" {
			// Who alone may act for the user through token exchange
			// (RFC 8693 §4.4): carried into the user's access tokens.
			m, ok := v.(map[string]any)
			sub, _ := m["sub"].(string)
			if !ok || sub == "" {
				return invalid(`claim "may_act" must be an object with a "sub" string (a client_id)`)
			}
			for name, mv := range m {
				if _, isString := mv.(string); (name != "sub" && name != "iss") || !isString {
					return invalid(`claim "may_act" may hold only "sub" and "iss", both strings`)
				}
			}
			continue
		}
		if token.IsRegistered(k) || slices.ContainsFunc(userRegistered, func(r string) bool { return strings.EqualFold(r, k) }) {
			return invalid("claim %q is a registered claim and cannot be set per user", k)
		}
		if slices.ContainsFunc(introspectionMembers, func(m string) bool { return strings.EqualFold(m, k) }) {
			return invalid("claim %q would collide with the introspection response member of that name (RFC 7662 §2.2)", k)
		}
		kind, ok := knownClaims[k]
		if ok && !hasKind(v, kind) {
			return invalid("claim %q must be %s", k, kindNames[kind])
		}
	}
	return nil
}

func hasKind(v any, kind claimKind) bool {
	switch kind {
	case claimString:
		_, ok := v.(string)
		return ok
	case claimBool:
		_, ok := v.(bool)
		return ok
	case claimNumber:
		switch v.(type) {
		case float64, json.Number, int, int64:
			return true
		}
	case claimObject:
		_, ok := v.(map[string]any)
		return ok
	case claimStrings:
		switch a := v.(type) {
		case []string:
			return true
		case []any:
			return !slices.ContainsFunc(a, func(e any) bool { _, s := e.(string); return !s })
		}
	}
	return false
}

// CreateUser validates spec and password, stores the user with the
// password's argon2id hash, and returns it. The username is stored lower
// case; ErrConflict if it is taken.
func (s *Service) CreateUser(ctx context.Context, spec UserSpec, pw string) (*UserInfo, error) {
	name, err := normaliseUsername(spec.Username)
	if err != nil {
		return nil, err
	}
	if err := checkUserClaims(spec.Claims); err != nil {
		return nil, err
	}
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return nil, fmt.Errorf("admin: create user: %w", err)
	}
	u := &sigil.User{ID: newUserID(), Username: name, PasswordHash: hash, Claims: spec.Claims, Disabled: spec.Disabled}
	if err := s.Store.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("admin: create user %q: %w", name, err)
	}
	err = s.changed(ctx, audit.Record{Event: audit.UserCreated, Subject: u.ID,
		Detail: map[string]string{"username": u.Username, "disabled": strconv.FormatBool(u.Disabled)}})
	return userInfo(u), err
}

// user finds a user by ID, then by username (normalised as stored).
func (s *Service) user(ctx context.Context, idOrName string) (*sigil.User, error) {
	u, err := s.Store.User(ctx, idOrName)
	if errors.Is(err, sigil.ErrNotFound) {
		u, err = s.Store.UserByName(ctx, sigil.FoldUsername(idOrName))
	}
	if err != nil {
		return nil, fmt.Errorf("admin: user %q: %w", idOrName, err)
	}
	return u, nil
}

// User returns one user, named by ID or username.
func (s *Service) User(ctx context.Context, idOrName string) (*UserInfo, error) {
	u, err := s.user(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return userInfo(u), nil
}

// Users lists every user, ordered by username.
func (s *Service) Users(ctx context.Context) ([]*UserInfo, error) {
	us, err := s.Store.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: list users: %w", err)
	}
	out := make([]*UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, userInfo(u))
	}
	return out, nil
}

// UpdateUser changes the fields upd names on the user named by ID or
// username. Disabling a user also revokes the tokens issued for them so
// far, as Revoke by subject does.
func (s *Service) UpdateUser(ctx context.Context, idOrName string, upd UserUpdate) (*UserInfo, error) {
	var name string
	if upd.Username != nil {
		var err error
		if name, err = normaliseUsername(*upd.Username); err != nil {
			return nil, err
		}
	}
	if err := checkUserClaims(upd.Claims); err != nil {
		return nil, err
	}
	u, err := s.user(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	detail := map[string]string{}
	var changed []string
	if upd.Username != nil && name != u.Username {
		detail["previous_username"] = u.Username
		u.Username = name
		changed = append(changed, "username")
	}
	if upd.Claims != nil {
		u.Claims = upd.Claims
		changed = append(changed, "claims")
	}
	disabling := upd.Disabled != nil && *upd.Disabled && !u.Disabled
	if upd.Disabled != nil && *upd.Disabled != u.Disabled {
		u.Disabled = *upd.Disabled
		detail["disabled"] = strconv.FormatBool(u.Disabled)
		changed = append(changed, "disabled")
	}
	if len(changed) == 0 {
		return userInfo(u), nil
	}
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("admin: update user %q: %w", u.ID, err)
	}
	detail["username"] = u.Username
	detail["changed"] = strings.Join(changed, " ")
	err = s.changed(ctx, audit.Record{Event: audit.UserUpdated, Subject: u.ID, Detail: detail})
	if disabling {
		if _, rerr := s.Revoke(ctx, "", "", u.ID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("admin: user %s disabled, but revoking their tokens failed: %w", u.ID, rerr))
		}
	}
	return userInfo(u), err
}

// SetPassword replaces the password of the user named by ID or username.
// The old password stops working at once.
func (s *Service) SetPassword(ctx context.Context, idOrName, pw string) (*UserInfo, error) {
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	u, err := s.user(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if u.PasswordHash, err = password.Hash(pw); err != nil {
		return nil, fmt.Errorf("admin: set password: %w", err)
	}
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("admin: set password of %q: %w", u.ID, err)
	}
	// A new password signs the user out of every browser: whoever knew
	// the old one may be signed in.
	ended, err := s.Store.DeleteSessions(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("admin: set password of %q: end sessions: %w", u.ID, err)
	}
	err = s.changed(ctx, audit.Record{Event: audit.UserPasswordSet, Subject: u.ID,
		Detail: map[string]string{"username": u.Username, "sessions_ended": strconv.Itoa(ended)}})
	return userInfo(u), err
}

// DeleteUser removes the user named by ID or username, with their
// sessions, consents and refresh tokens, and revokes the access tokens
// issued for them so far (Revoke by subject).
func (s *Service) DeleteUser(ctx context.Context, idOrName string) (*UserInfo, error) {
	u, err := s.user(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteUser(ctx, u.ID); err != nil {
		return nil, fmt.Errorf("admin: delete user %q: %w", u.ID, err)
	}
	err = s.changed(ctx, audit.Record{Event: audit.UserDeleted, Subject: u.ID, Detail: map[string]string{"username": u.Username}})
	// The user is gone: their tokens go too, even if the audit record
	// failed.
	if _, rerr := s.Revoke(ctx, "", "", u.ID); rerr != nil {
		err = errors.Join(err, fmt.Errorf("admin: user %s deleted, but revoking their tokens failed: %w", u.ID, rerr))
	}
	return userInfo(u), err
}

// storableText reports whether s is valid UTF-8 without NUL, which
// neither store can keep in JSON text (PostgreSQL's jsonb refuses \u0000).
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// storableValue applies storableText to every string and member name in
// a decoded JSON value.
func storableValue(v any) bool {
	switch x := v.(type) {
	case string:
		return storableText(x)
	case []any:
		for _, e := range x {
			if !storableValue(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			if !storableText(k) || !storableValue(e) {
				return false
			}
		}
	}
	return true
}
