package audit

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/token"
	"github.com/sigil-sts/sigil/verify"
)

// CheckpointType is the typ header of checkpoint JWSs.
const CheckpointType = "sigil-audit-checkpoint+jwt"

// checkpointPayload is what a checkpoint signs.
type checkpointPayload struct {
	Seq  int64  `json:"seq"`
	Head string `json:"head"` // hex SHA-256 of record Seq
	IAT  int64  `json:"iat"`
	Node string `json:"node,omitempty"`
}

// NewCheckpoint signs head.
func NewCheckpoint(head sigil.AuditHead, node string, now time.Time, sign func([]byte) (string, error)) (sigil.AuditCheckpoint, error) {
	payload, err := json.Marshal(checkpointPayload{Seq: head.Seq, Head: hex.EncodeToString(head.Hash), IAT: now.Unix(), Node: node})
	if err != nil {
		return sigil.AuditCheckpoint{}, fmt.Errorf("audit: encode checkpoint: %w", err)
	}
	jws, err := sign(payload)
	if err != nil {
		return sigil.AuditCheckpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return sigil.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, JWS: jws, CreatedAt: now}, nil
}

// KeySigner signs checkpoints with the active key of alg in ks.
func KeySigner(ks *keys.Set, alg string) func([]byte) (string, error) {
	return func(payload []byte) (string, error) {
		k, err := ks.Active(alg)
		if err != nil {
			return "", err
		}
		s, err := k.SignerFor(CheckpointType)
		if err != nil {
			return "", err
		}
		jws, err := s.Sign(payload)
		if err != nil {
			return "", err
		}
		return jws.CompactSerialize()
	}
}

// TrustedKeys returns the keys a checkpoint may be signed with: every
// stored and archived key whose sealed private half opens under sealer's
// master key and matches its public half. A key row written by someone
// without the master key is left out, so it cannot vouch for anything.
func TrustedKeys(ctx context.Context, st sigil.KeyStore, sealer *keys.Sealer) (verify.KeySet, error) {
	live, err := st.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: load keys: %w", err)
	}
	archived, err := st.ArchivedKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: load archived keys: %w", err)
	}
	set := verify.KeySet{}
	for _, k := range append(live, archived...) {
		pub, err := x509.ParsePKIXPublicKey(k.Public)
		if err != nil || keys.CheckPublic(k.Alg, pub) != nil {
			continue
		}
		signer, err := keys.OpenSigner(sealer, k)
		if err != nil || !keys.SamePublic(signer.Public(), pub) {
			continue
		}
		set[k.ID] = verify.Key{Public: pub, Alg: k.Alg}
	}
	return set, nil
}

// checkCheckpoint verifies cp's signature against trusted and that its
// payload names cp's Seq and Hash.
func checkCheckpoint(ctx context.Context, cp sigil.AuditCheckpoint, trusted verify.KeySet) error {
	h, payload, err := token.VerifyJWS(ctx, cp.JWS, trusted)
	if err != nil {
		return fmt.Errorf("signature does not verify with any key created under the master key: %v", err)
	}
	if !token.TypeIs(h.Typ, CheckpointType) {
		return fmt.Errorf("typ %q is not %s", h.Typ, CheckpointType)
	}
	var p checkpointPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("payload: %v", err)
	}
	if p.Seq != cp.Seq || p.Head != hex.EncodeToString(cp.Hash) {
		return errors.New("its signed payload does not match its stored position and hash")
	}
	return nil
}
