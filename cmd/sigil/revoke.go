package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
)

func revokeFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.revokeJTI, "jti", "", "revoke the token with this jti")
	fs.StringVar(&o.revokeClient, "client", "", "revoke every token issued to this client so far")
	fs.StringVar(&o.revokeSubject, "subject", "", "revoke every token issued so far whose sub is this")
}

func runRevoke(ctx context.Context, m *Main, o *options) error {
	n := 0
	for _, v := range []string{o.revokeJTI, o.revokeClient, o.revokeSubject} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("revoke needs exactly one of --jti, --client or --subject")
	}
	core, err := openCore(ctx, o)
	if err != nil {
		return err
	}
	defer core.Close()
	res, err := core.Admin.Revoke(ctx, o.revokeJTI, o.revokeClient, o.revokeSubject)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"revoked": true, "jti": o.revokeJTI, "client": o.revokeClient,
			"subject": o.revokeSubject, "status_entries": res.StatusEntries, "exchanged": res.Exchanged})
	}
	fmt.Fprintln(m.Stdout, "revoked")
	if res.StatusEntries > 0 {
		fmt.Fprintf(m.Stdout, "status list entries set: %d\n", res.StatusEntries)
	}
	if res.Exchanged > 0 {
		fmt.Fprintf(m.Stdout, "tokens exchanged from them, revoked too: %d\n", res.Exchanged)
	}
	return nil
}
