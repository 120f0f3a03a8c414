package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// LoadFunc builds an engine from its policy source (a directory, later the
// store). It must validate everything it loads and return an error rather
// than a partly loaded engine.
type LoadFunc func() (Engine, error)

// PDP is the policy decision point callers hold: it evaluates requests on
// the current engine, fails closed, and swaps in a newly loaded engine on
// Reload. It is safe for concurrent use; Evaluate never blocks on Reload.
type PDP struct {
	load LoadFunc

	mu      sync.Mutex // serialises Reload
	current atomic.Pointer[loaded]

	// Now is the clock used to stamp loads. Default time.Now.
	Now func() time.Time
	// Log receives engine panics with their stacks; nil logs nothing.
	Log *slog.Logger
}

// loaded is one generation of the policy set.
type loaded struct {
	engine Engine
	at     time.Time
	gen    uint64
}

// NewPDP loads the first policy set with load and returns a PDP serving
// it. An error from the first load is returned as is: there is no previous
// set to keep, and a PDP without policies would deny everything silently.
func NewPDP(load LoadFunc) (*PDP, error) {
	p := &PDP{load: load}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload builds a new engine with the PDP's LoadFunc and, if it loaded
// and validated, makes it current. On error the previous engine stays
// current and the error (a *LoadError or a join of them, for a syntax or
// validation failure) is returned. Evaluations already running finish on
// the engine they began with.
func (p *PDP) Reload() (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() {
		// A panicking loader must not take the PDP down with it; the
		// previous set stays.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: policy load panicked: %v", ErrEngine, r)
		}
	}()
	e, err := p.load()
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%w: loader returned no engine", ErrEngine)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	var gen uint64 = 1
	if old := p.current.Load(); old != nil {
		gen = old.gen + 1
	}
	p.current.Store(&loaded{engine: e, at: now(), gen: gen})
	return nil
}

// Generation returns how many policy sets have been made current (1 after
// NewPDP) and when the current one was loaded.
func (p *PDP) Generation() (n uint64, at time.Time) {
	if l := p.current.Load(); l != nil {
		return l.gen, l.at
	}
	return 0, time.Time{}
}

// Evaluate validates req and evaluates it on the current engine. It fails
// closed: an invalid request, a done context, an engine error or a panic
// inside the engine yields a deny Decision, with an error as Engine
// documents (a panic is reported as ErrEngine; its stack goes to Log, never
// into the error).
func (p *PDP) Evaluate(ctx context.Context, req Request) (d Decision, err error) {
	if err := req.Validate(); err != nil {
		return deny(err), err
	}
	if err := ctx.Err(); err != nil {
		return deny(err), err
	}
	l := p.current.Load()
	if l == nil {
		return deny(ErrEngine), fmt.Errorf("%w: no policy set loaded", ErrEngine)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: engine panicked: %v", ErrEngine, r)
			if p.Log != nil {
				p.Log.Error("policy engine panicked", "err", err, "stack", string(debug.Stack()))
			}
			d = deny(err)
		}
	}()
	d, err = l.engine.Evaluate(ctx, req)
	if err != nil {
		// Whatever the engine returned alongside an error is replaced:
		// an error is always a deny.
		if !errors.Is(err, ErrEngine) && ctx.Err() == nil {
			var re *RequestError
			if !errors.As(err, &re) {
				err = fmt.Errorf("%w: %w", ErrEngine, err)
			}
		}
		return deny(err), err
	}
	return d, nil
}

// LoadError reports a policy, schema or data file that failed to parse or
// validate, with its position when the engine reports one.
type LoadError struct {
	// File is the path of the file within the policy source.
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Err is the parser's or validator's error.
	Err error
}

// Error returns "file:line:column: message", leaving out the parts that
// are unknown, as compilers do.
func (e *LoadError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	default:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error { return e.Err }
