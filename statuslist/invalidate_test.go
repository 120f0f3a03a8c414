package statuslist_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/statuslist"
	"github.com/sigil-sts/sigil/token"
)

// issued is a token minted with a status list entry.
type issued struct {
	statuslist.Entry
	JTI string
}

// issueTokens allocates n entries from lists of size entries (size/2 per
// lease) and returns them with the jtis of their tokens, minted at clk's
// time.
func issueTokens(tb testing.TB, st sigil.StatusListStore, clk *clock, size, n int) []issued {
	tb.Helper()
	a := newAllocator(st, "node-a", size, clk)
	toks := make([]issued, n)
	for i := range toks {
		e := allocate(tb, a)
		toks[i] = issued{e, token.NewStatusJTI(clk.Now(), e.List, e.Index)}
	}
	return toks
}

func TestInvalidate(t *testing.T) {
	// 40 tokens over lists of 64 entries: 32 in the first list, 8 in the
	// second.
	const size, n = 64, 40
	for _, tt := range []struct {
		name string
		// jtis picks the identifiers to invalidate among the tokens.
		jtis  func(toks []issued, now time.Time) []string
		count int
		// want returns the tokens whose entries must be INVALID; every
		// other entry stays VALID.
		want func(toks []issued) []issued
	}{
		{
			name:  "one",
			jtis:  func(toks []issued, _ time.Time) []string { return []string{toks[5].JTI} },
			count: 1,
			want:  func(toks []issued) []issued { return []issued{toks[5]} },
		},
		{
			name: "two lists",
			jtis: func(toks []issued, _ time.Time) []string {
				return []string{toks[35].JTI, toks[0].JTI, toks[31].JTI, toks[0].JTI, toks[39].JTI}
			},
			count: 5, // the repeated jti is counted twice
			want:  func(toks []issued) []issued { return []issued{toks[0], toks[31], toks[35], toks[39]} },
		},
		{
			name: "no position",
			jtis: func(toks []issued, now time.Time) []string {
				return []string{
					token.NewJTI(now), "", "garbage",
					strings.Repeat("!", 40),             // the length of a status jti, not base32
					toks[0].JTI[:39], toks[0].JTI + "0", // one character short, one too many
					strings.ToLower(toks[0].JTI[:39]) + "=", // lower case and padding
				}
			},
			count: 0,
			want:  func([]issued) []issued { return nil },
		},
		{
			name: "unknown list",
			jtis: func(toks []issued, now time.Time) []string {
				return []string{
					token.NewStatusJTI(now, 99, toks[1].Index),
					token.NewStatusJTI(now, 0, toks[1].Index),
					toks[2].JTI,
				}
			},
			count: 1, // only the live entry
			want:  func(toks []issued) []issued { return []issued{toks[2]} },
		},
		{
			name: "mixed",
			jtis: func(toks []issued, now time.Time) []string {
				return []string{token.NewJTI(now), toks[3].JTI, "x", token.NewStatusJTI(now, 7, 1), toks[36].JTI}
			},
			count: 2,
			want:  func(toks []issued) []issued { return []issued{toks[3], toks[36]} },
		},
		{
			name:  "none",
			jtis:  func([]issued, time.Time) []string { return nil },
			count: 0,
			want:  func([]issued) []issued { return nil },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			clk := newClock()
			toks := issueTokens(t, st, clk, size, n)
			if toks[31].List == toks[32].List || toks[0].List != toks[31].List || toks[32].List != toks[39].List {
				t.Fatalf("tokens not spread over two lists as expected: %v %v %v", toks[0].Entry, toks[32].Entry, toks[39].Entry)
			}
			clk.Advance(time.Minute / 2)
			invalidate(t, st, tt.count, tt.jtis(toks, clk.Now())...)

			want := map[uint32][]sigil.StatusEntry{toks[0].List: nil, toks[39].List: nil}
			for _, tok := range tt.want(toks) {
				want[tok.List] = append(want[tok.List], invalid(tok.Index)...)
			}
			for id, w := range want {
				slices.SortFunc(w, func(a, b sigil.StatusEntry) int { return int(a.Index) - int(b.Index) })
				if _, got := list(t, st, id); !cmp.Equal(got, w) {
					t.Errorf("list %d entries (-want +got):\n%s", id, cmp.Diff(w, got))
				}
			}
		})
	}
}

// TestInvalidateStale: once a list is recycled, a jti of its previous
// generation names an index that a live token may hold now; setting it
// would revoke that token. Such a jti is counted (it names a position) but
// changes nothing, even in one call with current jtis of the same list.
func TestInvalidateStale(t *testing.T) {
	for _, tt := range []struct {
		name string
		// jtis picks the identifiers to invalidate: live is the token now
		// holding the index a stale jti names, fresh another live token,
		// since the current generation's start.
		jtis func(live, fresh issued, since time.Time) []string
		want func(live, fresh issued) []uint32
	}{
		{
			name: "stale alone",
			jtis: func(live, _ issued, _ time.Time) []string {
				return []string{token.NewStatusJTI(t0, live.List, live.Index)}
			},
			want: func(issued, issued) []uint32 { return nil },
		},
		{
			name: "one millisecond before the generation",
			jtis: func(live, _ issued, since time.Time) []string {
				return []string{token.NewStatusJTI(since.Add(-time.Millisecond), live.List, live.Index)}
			},
			want: func(issued, issued) []uint32 { return nil },
		},
		{
			name: "at the generation's start",
			jtis: func(live, _ issued, since time.Time) []string {
				return []string{token.NewStatusJTI(since, live.List, live.Index)}
			},
			want: func(live, _ issued) []uint32 { return []uint32{live.Index} },
		},
		{
			// The stale jti names the live token's index; the current one
			// another index of the same list.
			name: "stale with current",
			jtis: func(live, fresh issued, _ time.Time) []string {
				return []string{token.NewStatusJTI(t0, live.List, live.Index), fresh.JTI}
			},
			want: func(_, fresh issued) []uint32 { return []uint32{fresh.Index} },
		},
		{
			name: "current then stale",
			jtis: func(live, fresh issued, _ time.Time) []string {
				return []string{fresh.JTI, token.NewStatusJTI(t0, live.List, live.Index)}
			},
			want: func(_, fresh issued) []uint32 { return []uint32{fresh.Index} },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			clk := newClock()
			a := newAllocator(st, "node-a", 8, clk)
			first := allocate(t, a) // generation 1, at t0
			gen1, _ := list(t, st, first.List)

			// At RecycleAfter the list, without entries, is leased again.
			clk.Set(gen1.RecycleAfter.Add(time.Second))
			e := allocate(t, a)
			live := issued{e, token.NewStatusJTI(clk.Now(), e.List, e.Index)}
			e = allocate(t, a)
			fresh := issued{e, token.NewStatusJTI(clk.Now(), e.List, e.Index)}
			gen2, _ := list(t, st, first.List)
			if live.List != first.List || fresh.List != first.List || gen2.Generation != 2 {
				t.Fatalf("list %d not recycled: generation %d, entries %v %v", first.List, gen2.Generation, live.Entry, fresh.Entry)
			}

			// Only live entries count.
			invalidate(t, st, len(tt.want(live, fresh)), tt.jtis(live, fresh, gen2.Since)...)
			after, got := list(t, st, first.List)
			want := invalid(tt.want(live, fresh)...)
			if !cmp.Equal(got, want) {
				t.Errorf("entries of the recycled list (-want +got):\n%s", cmp.Diff(want, got))
			}
			if len(want) == 0 && after.Version != gen2.Version {
				t.Errorf("version moved from %d to %d with no entry set", gen2.Version, after.Version)
			}
		})
	}
}

// TestInvalidateOutOfRange: a position past its list's end names no token
// of ours (an operator's mistyped jti): it is skipped without an error,
// and the other identifiers of the call still take effect.
func TestInvalidateOutOfRange(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	tok := issueTokens(t, st, clk, 64, 1)[0]
	n, err := statuslist.Invalidate(context.Background(), st, token.NewStatusJTI(clk.Now(), tok.List, 64), tok.JTI)
	if err != nil || n != 1 {
		t.Fatalf("Invalidate = %d, %v; want 1 (the real token), nil", n, err)
	}
	_, entries, err := st.StatusList(context.Background(), int64(tok.List))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Index != tok.Index {
		t.Errorf("entries %v, want only the real token's entry %d", entries, tok.Index)
	}
}
