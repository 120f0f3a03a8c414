package sigil

import (
	"context"
	"strings"
	"time"
)

// User is a person who signs in through the browser. ID is the stable
// subject identifier (the sub of every token issued for the user);
// Username is what the user types and may change.
type User struct {
	// ID is the subject identifier, unique and immutable.
	ID string
	// Username is the sign-in name, unique (compared exactly; the admin
	// layer normalises it before storing).
	Username string
	// PasswordHash is the PHC-format argon2id hash of the password (see
	// package password); empty means the user cannot sign in with one.
	PasswordHash string
	// Claims are the user's claims: OpenID Connect profile and email
	// claims, groups, and ABAC entitlements. They never hold registered
	// claims.
	Claims map[string]any
	// Disabled users cannot sign in, and their refresh tokens stop working.
	Disabled bool
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserStore persists users.
type UserStore interface {
	// CreateUser stores a new user; ErrConflict if the ID or the username
	// exists.
	CreateUser(ctx context.Context, u *User) error
	// User returns one user by ID; ErrNotFound if there is none.
	User(ctx context.Context, id string) (*User, error)
	// UserByName returns one user by username; ErrNotFound if there is none.
	UserByName(ctx context.Context, username string) (*User, error)
	// Users returns every user, ordered by username.
	Users(ctx context.Context) ([]*User, error)
	// UpdateUser replaces a stored user's fields (ID is the key);
	// ErrNotFound if absent, ErrConflict if the new username is taken.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes a user with their sessions, consents and refresh
	// families (and the access tokens recorded in them); ErrNotFound if
	// absent.
	DeleteUser(ctx context.Context, id string) error
}

// FoldUsername lower-cases the ASCII letters of s and nothing else: the
// form usernames are stored and looked up in. strings.ToLower would map
// some other letters (the Kelvin sign K) to ASCII ones, giving one account
// many spellings.
func FoldUsername(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
