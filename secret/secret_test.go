package secret

import (
	"fmt"
	"strings"
	"testing"
)

func TestHasher(t *testing.T) {
	h, err := NewHasher([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	s := Generate()
	if len(s.Reveal()) != 43 {
		t.Fatalf("secret length %d, want 43", len(s.Reveal()))
	}
	stored := h.Hash(s)
	if !h.Equal(stored, New(s.Reveal())) {
		t.Fatal("the right secret does not match")
	}
	if h.Equal(stored, New(s.Reveal()+"x")) {
		t.Fatal("a wrong secret matches")
	}
	if h.Equal(nil, New("")) || h.Equal([]byte{}, New("")) {
		t.Fatal("an empty stored hash matches")
	}
	other, _ := NewHasher([]byte(strings.Repeat("o", 32)))
	if other.Equal(stored, s) {
		t.Fatal("a hash under another key matches")
	}
	if _, err := NewHasher([]byte("short")); err == nil {
		t.Fatal("a short key is accepted")
	}
}

func TestValueNeverPrints(t *testing.T) {
	s := New("hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret printed: %q", out)
		}
	}
	if Generate().Reveal() == Generate().Reveal() {
		t.Fatal("two generated secrets are equal")
	}
}

func BenchmarkEqual(b *testing.B) {
	h, _ := NewHasher([]byte(strings.Repeat("k", 32)))
	s := Generate()
	stored := h.Hash(s)
	for b.Loop() {
		h.Equal(stored, s)
	}
}
