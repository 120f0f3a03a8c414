package policy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeEngine is an Engine whose behaviour is a function.
type fakeEngine struct {
	evaluate func(ctx context.Context, req Request) (Decision, error)
}

func (f fakeEngine) Evaluate(ctx context.Context, req Request) (Decision, error) {
	return f.evaluate(ctx, req)
}

// allowAction allows exactly the named actions.
func allowAction(names ...string) fakeEngine {
	return fakeEngine{func(_ context.Context, req Request) (Decision, error) {
		for _, n := range names {
			if req.Action.Name == n {
				return Decision{Allow: true, Reasons: []Reason{{Policy: "allow-" + n}}}, nil
			}
		}
		return Decision{}, nil
	}}
}

func validRequest(action string) Request {
	return Request{Subject: Subject{Type: "user", ID: "alice"}, Action: Action{Name: action}, Resource: Resource{Type: "record", ID: "r1"}}
}

func TestPDPReloadKeepsPreviousSetOnError(t *testing.T) {
	// The LoadFunc's next result; Reload calls it synchronously.
	var nextEngine Engine = allowAction("read")
	var nextErr error
	load := func() (Engine, error) { return nextEngine, nextErr }
	p, err := NewPDP(load)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d, err := p.Evaluate(ctx, validRequest("read")); err != nil || !d.Allow {
		t.Fatalf("read: %+v, %v", d, err)
	}

	broken := &LoadError{File: "todo.cedar", Line: 3, Column: 7, Err: errors.New("unexpected token")}
	nextErr = broken
	if err := p.Reload(); !errors.Is(err, broken) {
		t.Fatalf("Reload error %v", err)
	}
	if got := broken.Error(); got != "todo.cedar:3:7: unexpected token" {
		t.Errorf("LoadError text %q", got)
	}
	if n, _ := p.Generation(); n != 1 {
		t.Errorf("generation %d after a failed reload, want 1", n)
	}
	if d, _ := p.Evaluate(ctx, validRequest("read")); !d.Allow {
		t.Error("the previous policy set was not kept")
	}

	nextEngine, nextErr = allowAction("write"), nil
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.Generation(); n != 2 {
		t.Errorf("generation %d, want 2", n)
	}
	if d, _ := p.Evaluate(ctx, validRequest("read")); d.Allow {
		t.Error("the new policy set was not swapped in")
	}

	// A loader that returns nothing or panics leaves the set in place.
	nextEngine = nil
	if err := p.Reload(); !errors.Is(err, ErrEngine) {
		t.Errorf("nil engine: %v", err)
	}
	p.load = func() (Engine, error) { panic("loader bug") }
	if err := p.Reload(); !errors.Is(err, ErrEngine) {
		t.Errorf("panicking loader: %v", err)
	}
	if d, _ := p.Evaluate(ctx, validRequest("write")); !d.Allow {
		t.Error("a nil engine replaced the policy set")
	}
}

func TestNewPDPFailsOnFirstLoadError(t *testing.T) {
	if _, err := NewPDP(func() (Engine, error) { return nil, errors.New("no policies") }); err == nil {
		t.Fatal("NewPDP succeeded without policies")
	}
}

func TestPDPFailsClosed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		engine  Engine
		req     Request
		ctx     context.Context
		wantErr func(error) bool
	}{
		{
			name:    "engine panics",
			engine:  fakeEngine{func(context.Context, Request) (Decision, error) { panic("boom") }},
			req:     validRequest("read"),
			wantErr: func(err error) bool { return errors.Is(err, ErrEngine) },
		},
		{
			name: "engine errors but says allow",
			engine: fakeEngine{func(context.Context, Request) (Decision, error) {
				return Decision{Allow: true}, errors.New("store down")
			}},
			req:     validRequest("read"),
			wantErr: func(err error) bool { return errors.Is(err, ErrEngine) },
		},
		{
			name:   "invalid request never reaches the engine",
			engine: fakeEngine{func(context.Context, Request) (Decision, error) { return Decision{Allow: true}, nil }},
			req:    Request{Subject: Subject{Type: "user"}},
			wantErr: func(err error) bool {
				var re *RequestError
				return errors.As(err, &re) && re.Field == "subject.id"
			},
		},
		{
			name:   "canceled context",
			engine: allowAction("read"),
			req:    validRequest("read"),
			ctx: func() context.Context {
				c, cancel := context.WithCancel(ctx)
				cancel()
				return c
			}(),
			wantErr: func(err error) bool { return errors.Is(err, context.Canceled) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPDP(func() (Engine, error) { return tt.engine, nil })
			if err != nil {
				t.Fatal(err)
			}
			c := tt.ctx
			if c == nil {
				c = ctx
			}
			d, err := p.Evaluate(c, tt.req)
			if d.Allow || len(d.Errors) == 0 {
				t.Errorf("decision %+v, want a deny with its error", d)
			}
			if !tt.wantErr(err) {
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestPDPConcurrentReload evaluates while reloading; run with -race.
func TestPDPConcurrentReload(t *testing.T) {
	var flip atomic.Bool
	p, err := NewPDP(func() (Engine, error) {
		if flip.Load() {
			return allowAction("read", "write"), nil
		}
		return allowAction("read"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				if d, err := p.Evaluate(ctx, validRequest("read")); err != nil || !d.Allow {
					t.Errorf("read denied during reload: %+v %v", d, err)
					return
				}
			}
		})
	}
	for i := range 100 {
		flip.Store(i%2 == 0)
		if err := p.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestEvaluateBatchSemantics(t *testing.T) {
	ctx := context.Background()
	e := allowAction("read", "list")
	item := func(action string) Evaluation { return Evaluation{Action: &Action{Name: action}} }
	base := EvaluationsRequest{
		Subject:     &Subject{Type: "user", ID: "alice"},
		Resource:    &Resource{Type: "record", ID: "r1"},
		Evaluations: []Evaluation{item("read"), item("write"), {}, item("list")},
	}
	tests := []struct {
		semantic string
		want     []bool
	}{
		{"", []bool{true, false, false, true}},
		{ExecuteAll, []bool{true, false, false, true}},
		{DenyOnFirstDeny, []bool{true, false}},
		{PermitOnFirstPermit, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.semantic, func(t *testing.T) {
			b := base
			b.Semantic = tt.semantic
			ds, err := EvaluateBatch(ctx, e, &b)
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for _, d := range ds {
				got = append(got, d.Allow)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decisions %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("decisions %v, want %v", got, tt.want)
				}
			}
			// The item without an action is a deny with its error, not a
			// failed batch.
			if len(ds) > 2 && (len(ds[2].Errors) == 0 || ds[2].Errors[0].Message == "") {
				t.Errorf("invalid item decision %+v", ds[2])
			}
		})
	}

	// No items: the defaults are one evaluation.
	single := EvaluationsRequest{Subject: base.Subject, Resource: base.Resource, Action: &Action{Name: "read"}}
	if ds, err := EvaluateBatch(ctx, e, &single); err != nil || len(ds) != 1 || !ds[0].Allow {
		t.Errorf("empty evaluations: %+v, %v", ds, err)
	}
	// Token claims reach every item.
	var seen int
	spy := fakeEngine{func(_ context.Context, r Request) (Decision, error) {
		if r.Token["sub"] == "alice" {
			seen++
		}
		return Decision{}, nil
	}}
	withToken := base
	withToken.Token = map[string]any{"sub": "alice"}
	if _, err := EvaluateBatch(ctx, spy, &withToken); err != nil || seen != 3 {
		t.Errorf("token seen by %d of 3 valid items, %v", seen, err)
	}
}
