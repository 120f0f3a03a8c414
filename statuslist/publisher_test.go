package statuslist_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/keys"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/store/sqlite"
)

const testIssuer = "https://sigil.example"

// newKeys returns a key set over st with an active ES256 and EdDSA key.
func newKeys(tb testing.TB, st *sqlite.Store) *keys.Set {
	tb.Helper()
	mk, err := keys.ParseMasterKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	if err != nil {
		tb.Fatal(err)
	}
	s := &keys.Set{Store: st, Sealer: keys.NewSealer(mk), LoadPrivate: true, Prepublish: time.Hour, RetainRetired: time.Hour, Now: func() time.Time { return t0 }}
	if err := s.Init(context.Background(), "ES256", "EdDSA"); err != nil {
		tb.Fatal(err)
	}
	return s
}

// statusListClaims are the claims of a Status List Token (§5.1).
type statusListClaims struct {
	Iss        string           `json:"iss"`
	Sub        string           `json:"sub"`
	Iat        int64            `json:"iat"`
	Exp        int64            `json:"exp"`
	TTL        int64            `json:"ttl"`
	StatusList *statuslist.JSON `json:"status_list"`
}

// verify checks tok's signature with an independent JOSE library
// against the public JWK Set of ks and returns its header and claims.
func verify(ks *keys.Set, tok string) (jws.Headers, statusListClaims, error) {
	if parts := strings.Split(tok, "."); len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, statusListClaims{}, fmt.Errorf("token %q is not a compact JWS", tok)
	}
	set, err := jwk.Parse(ks.JWKS())
	if err != nil {
		return nil, statusListClaims{}, err
	}
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(set))
	if err != nil {
		return nil, statusListClaims{}, fmt.Errorf("verify the Status List Token against the JWKS: %w", err)
	}
	msg, err := jws.ParseString(tok)
	if err != nil {
		return nil, statusListClaims{}, err
	}
	if n := len(msg.Signatures()); n != 1 {
		return nil, statusListClaims{}, fmt.Errorf("%d signatures, want 1", n)
	}
	var c statusListClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, statusListClaims{}, fmt.Errorf("claims %s: %w", payload, err)
	}
	if c.StatusList == nil {
		return nil, statusListClaims{}, fmt.Errorf("claims %s: no status_list", payload)
	}
	return msg.Signatures()[0].ProtectedHeaders(), c, nil
}

func verified(tb testing.TB, ks *keys.Set, tok string) (jws.Headers, statusListClaims) {
	tb.Helper()
	h, c, err := verify(ks, tok)
	if err != nil {
		tb.Fatal(err)
	}
	return h, c
}

// decodedList returns the status list carried by tok.
func decodedList(tb testing.TB, ks *keys.Set, tok string) *statuslist.List {
	tb.Helper()
	_, c := verified(tb, ks, tok)
	l, err := statuslist.Decode(*c.StatusList)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func publish(tb testing.TB, p *statuslist.Publisher, id uint32) string {
	tb.Helper()
	tok, err := p.Token(context.Background(), int64(id))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestPublisherToken: the Status List Token is a compact JWS of type
// statuslist+jwt, signed with the active key of its algorithm, whose
// claims name the list and carry its entries.
func TestPublisherToken(t *testing.T) {
	const size = 100 // not a multiple of 8: the list is padded to 104
	for _, tt := range []struct {
		alg     string
		ttl     time.Duration
		wantAlg string
		wantTTL int64
	}{
		{alg: "", ttl: 0, wantAlg: keys.DefaultAlg, wantTTL: int64(statuslist.DefaultTTL / time.Second)},
		{alg: "EdDSA", ttl: 2 * time.Minute, wantAlg: "EdDSA", wantTTL: 120},
	} {
		t.Run(tt.wantAlg, func(t *testing.T) {
			st := openStore(t)
			ks := newKeys(t, st)
			clk := newClock()
			toks := issueTokens(t, st, clk, size, 60) // 50 in the first list, 10 in the second
			revoked := []issued{toks[3], toks[17], toks[49], toks[55]}
			for _, tok := range revoked {
				invalidate(t, st, 1, tok.JTI)
			}
			clk.Advance(90 * time.Second)
			p := &statuslist.Publisher{Store: st, Keys: ks, Alg: tt.alg, Issuer: testIssuer, BaseURI: baseURI, TTL: tt.ttl, Now: clk.Now}

			for _, id := range []uint32{toks[0].List, toks[59].List} {
				jwt := publish(t, p, id)
				h, c := verified(t, ks, jwt)
				key, err := ks.Active(tt.wantAlg)
				if err != nil {
					t.Fatal(err)
				}
				typ, _ := h.Type()
				kid, _ := h.KeyID()
				alg, _ := h.Algorithm()
				if typ != "statuslist+jwt" || kid != key.ID || alg.String() != tt.wantAlg {
					t.Errorf("header typ %q kid %q alg %q, want statuslist+jwt %q %q", typ, kid, alg, key.ID, tt.wantAlg)
				}
				iat := clk.Now().Unix()
				uri := baseURI + strconv.FormatUint(uint64(id), 10)
				if p.URI(int64(id)) != uri {
					t.Errorf("URI(%d) = %q, want %q", id, p.URI(int64(id)), uri)
				}
				want := statusListClaims{
					Iss: testIssuer, Sub: uri, Iat: iat,
					Exp: iat + int64(statuslist.Validity/time.Second), TTL: tt.wantTTL,
					StatusList: c.StatusList,
				}
				if diff := cmp.Diff(want, c); diff != "" {
					t.Errorf("list %d claims (-want +got):\n%s", id, diff)
				}
				if c.StatusList.Bits != 1 || c.StatusList.AggregationURI != "" {
					t.Fatalf("status_list %+v, want 1 bit per entry", c.StatusList)
				}

				// The list carries exactly the store's entries.
				l, err := statuslist.Decode(*c.StatusList)
				if err != nil {
					t.Fatal(err)
				}
				if l.Len() != 104 {
					t.Errorf("list of %d entries, want %d rounded up to a byte", l.Len(), size)
				}
				_, entries := list(t, st, id)
				wantEntries := map[int64]uint8{}
				for _, e := range entries {
					wantEntries[int64(e.Index)] = e.Status
				}
				var fromRevoked int
				for _, tok := range revoked {
					if tok.List == id {
						fromRevoked++
					}
				}
				if len(wantEntries) != fromRevoked {
					t.Fatalf("store has %d entries in list %d, want %d", len(wantEntries), id, fromRevoked)
				}
				for i := range int64(l.Len()) {
					if got, _ := l.Get(i); got != wantEntries[i] {
						t.Errorf("list %d entry %d = %d, want %d", id, i, got, wantEntries[i])
					}
				}
			}
		})
	}
}

// TestPublisherCache: the token is reused while the list's version is
// unchanged and less than half the ttl has passed since it was signed.
// ES256 signatures are randomised, so a token signed again differs.
func TestPublisherCache(t *testing.T) {
	const ttl = 10 * time.Second
	st := openStore(t)
	ks := newKeys(t, st)
	clk := newClock()
	toks := issueTokens(t, st, clk, 8, 5) // four in list 1, one in list 2
	p := &statuslist.Publisher{Store: st, Keys: ks, Alg: "ES256", Issuer: testIssuer, BaseURI: baseURI, TTL: ttl, Now: clk.Now}
	one, two := toks[0].List, toks[4].List

	tok1 := publish(t, p, one)
	clk.Advance(ttl/2 - time.Nanosecond)
	if got := publish(t, p, one); got != tok1 {
		t.Fatal("token signed again before its list changed or half its ttl passed")
	}
	// Another list has its own token; the first stays cached.
	if _, c := verified(t, ks, publish(t, p, two)); c.Sub != p.URI(int64(two)) {
		t.Fatalf("token of list %d has sub %q, want %q", two, c.Sub, p.URI(int64(two)))
	}
	if got := publish(t, p, one); got != tok1 {
		t.Fatal("token of list 1 signed again after list 2's")
	}

	// An entry changes: a new token at once, showing it.
	invalidate(t, st, 1, toks[2].JTI)
	tok2 := publish(t, p, one)
	if tok2 == tok1 {
		t.Fatal("the cached token is served after an entry of its list changed")
	}
	if got, _ := decodedList(t, ks, tok2).Get(int64(toks[2].Index)); got != sigil.StatusInvalid {
		t.Fatalf("entry %d = %d in the new token, want INVALID", toks[2].Index, got)
	}
	// Setting it again changes nothing in the store, nor the token.
	invalidate(t, st, 1, toks[2].JTI)
	if got := publish(t, p, one); got != tok2 {
		t.Fatal("token signed again though its list's version did not move")
	}

	// Half the ttl after tok2 was signed, it is signed again.
	clk.Advance(ttl/2 - time.Nanosecond)
	if got := publish(t, p, one); got != tok2 {
		t.Fatal("token signed again before half its ttl passed")
	}
	clk.Advance(time.Nanosecond)
	tok3 := publish(t, p, one)
	if tok3 == tok2 {
		t.Fatal("token still served once half its ttl passed")
	}
	if _, c := verified(t, ks, tok3); c.Iat != clk.Now().Unix() {
		t.Errorf("iat %d, want now, %d", c.Iat, clk.Now().Unix())
	}
}

// TestPublisherConcurrent: Token is safe for concurrent use (run with
// -race) while entries change.
func TestPublisherConcurrent(t *testing.T) {
	st := openStore(t)
	ks := newKeys(t, st)
	clk := newClock()
	toks := issueTokens(t, st, clk, 64, 8)
	p := &statuslist.Publisher{Store: st, Keys: ks, Issuer: testIssuer, BaseURI: baseURI, Now: clk.Now}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				tok, err := p.Token(context.Background(), int64(toks[0].List))
				if err != nil {
					t.Error(err)
					return
				}
				if _, c, err := verify(ks, tok); err != nil {
					t.Error(err)
				} else if _, err := statuslist.Decode(*c.StatusList); err != nil {
					t.Error(err)
				}
			}
			if _, err := statuslist.Invalidate(context.Background(), st, toks[i].JTI); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l := decodedList(t, ks, publish(t, p, toks[0].List))
	for _, tok := range toks {
		if got, _ := l.Get(int64(tok.Index)); got != sigil.StatusInvalid {
			t.Errorf("entry %d = %d after all were revoked, want INVALID", tok.Index, got)
		}
	}
}

// TestPublisherUnknownList: a list the store does not have is
// sigil.ErrNotFound, on an empty store and beside other lists.
func TestPublisherUnknownList(t *testing.T) {
	st := openStore(t)
	ks := newKeys(t, st)
	p := &statuslist.Publisher{Store: st, Keys: ks, Issuer: testIssuer, BaseURI: baseURI, Now: newClock().Now}
	if _, err := p.Token(context.Background(), 1); !errors.Is(err, sigil.ErrNotFound) {
		t.Errorf("Token(1) on an empty store: %v, want ErrNotFound", err)
	}
	tok := issueTokens(t, st, newClock(), 64, 1)[0]
	publish(t, p, tok.List)
	for _, id := range []int64{0, -1, int64(tok.List) + 1, 1 << 40} {
		if _, err := p.Token(context.Background(), id); !errors.Is(err, sigil.ErrNotFound) {
			t.Errorf("Token(%d): %v, want ErrNotFound", id, err)
		}
	}
}

// TestPublisherLists: Lists returns every list's URI in ID order, for the
// aggregation endpoint (§9).
func TestPublisherLists(t *testing.T) {
	st := openStore(t)
	p := &statuslist.Publisher{Store: st, BaseURI: "https://other.example/sl/"}
	got, err := p.Lists(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Lists on an empty store = %q, %v; want none", got, err)
	}
	issueTokens(t, st, newClock(), 2, 3) // one entry per lease: three lists
	got, err = p.Lists(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://other.example/sl/1", "https://other.example/sl/2", "https://other.example/sl/3"}
	if !cmp.Equal(got, want) {
		t.Errorf("Lists (-want +got):\n%s", cmp.Diff(want, got))
	}
}
