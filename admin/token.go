package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/secret"
)

// TokenFile is the admin API token's file in the data directory.
const TokenFile = "admin-token"

// LoadToken reads dataDir/admin-token, creating it (mode 0600, 256 random
// bits) on first use.
func LoadToken(dataDir string) (secret.Value, error) {
	path := filepath.Join(dataDir, TokenFile)
	b, err := keys.ReadPrivateFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 32 {
			return secret.Value{}, fmt.Errorf("admin: %s holds a token shorter than 32 characters", path)
		}
		return secret.New(t), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return secret.Value{}, fmt.Errorf("admin: read token: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return secret.Value{}, fmt.Errorf("admin: create data dir: %w", err)
	}
	t := secret.Generate()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadToken(dataDir)
	}
	if err != nil {
		return secret.Value{}, fmt.Errorf("admin: create token: %w", err)
	}
	_, werr := f.WriteString(t.Reveal() + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return secret.Value{}, fmt.Errorf("admin: write token: %w", werr)
	}
	return t, nil
}
