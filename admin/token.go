package admin

import (
	"fmt"
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
	b, err := keys.LoadOrCreatePrivateFile(path, func() []byte { return []byte(secret.Generate().Reveal() + "\n") })
	if err != nil {
		return secret.Value{}, fmt.Errorf("admin: token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 32 {
		return secret.Value{}, fmt.Errorf("admin: %s holds a token shorter than 32 characters", path)
	}
	return secret.New(t), nil
}
