package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/sigil-sts/sigil/store/postgres"
	"github.com/sigil-sts/sigil/store/sqlite"
)

func migrateFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.BoolVar(&o.print, "print", false, "print the SQL of the pending migrations instead of applying them")
}

// pendingMigration is a migration as `sigil migrate` reports it.
type pendingMigration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	SQL     string `json:"sql,omitempty"`
}

// runMigrate applies the store's pending migrations (every other command
// and `serve` apply them too, on open; operators run this one first
// before a rolling upgrade), or prints them with --print.
func runMigrate(ctx context.Context, m *Main, o *options) error {
	if err := o.cfg.Validate(); err != nil {
		return err
	}
	var pending []pendingMigration
	if o.cfg.DSN != "" {
		ms, err := postgres.Pending(ctx, o.cfg.DSN)
		if err != nil {
			return err
		}
		for _, x := range ms {
			pending = append(pending, pendingMigration{x.Version, x.Name, x.SQL})
		}
	} else {
		ms, err := sqlite.Pending(ctx, o.cfg.DataDir)
		if err != nil {
			return err
		}
		for _, x := range ms {
			pending = append(pending, pendingMigration{x.Version, x.Name, x.SQL})
		}
	}
	if o.print {
		if o.json {
			return json.NewEncoder(m.Stdout).Encode(orEmpty(pending))
		}
		for _, p := range pending {
			fmt.Fprintf(m.Stdout, "-- %s\n%s\n", p.Name, p.SQL)
		}
		if len(pending) == 0 {
			fmt.Fprintln(m.Stdout, "-- the schema is up to date")
		}
		return nil
	}
	// Opening the store applies them, under its lock.
	if o.cfg.DSN != "" {
		st, err := postgres.Open(ctx, o.cfg.DSN)
		if err != nil {
			return err
		}
		st.Close()
	} else {
		st, err := sqlite.Open(ctx, o.cfg.DataDir)
		if err != nil {
			return err
		}
		st.Close()
	}
	if o.json {
		for i := range pending {
			pending[i].SQL = ""
		}
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"applied": orEmpty(pending)})
	}
	for _, p := range pending {
		fmt.Fprintf(m.Stdout, "applied %s\n", p.Name)
	}
	if len(pending) == 0 {
		fmt.Fprintln(m.Stdout, "the schema is up to date")
	}
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
