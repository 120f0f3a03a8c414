package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

func keysRotateFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.alg, "alg", "ES256", "algorithm of the new key: ES256, EdDSA, RS256 or PS256")
}

func runKeysList(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	ks, err := core.Admin.ListKeys(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(m.Stdout).Encode(ks)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, k.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runKeysRotate(ctx context.Context, m *Main, o *options) error {
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	k, err := core.Admin.RotateKey(ctx, o.alg)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(m.Stdout).Encode(k)
	}
	fmt.Fprintf(m.Stdout, "added %s key %s (state %s); a server signs with it once it has been published for its keys.prepublish delay (as configured here: published for %s)\n", k.Alg, k.KID, k.State, o.cfg.KeysPrepublish)
	return nil
}
