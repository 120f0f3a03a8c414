package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/sigil-sts/sigil/config"
	"github.com/sigil-sts/sigil/server"
)

// options holds every flag value; each command registers the ones it uses.
type options struct {
	cfg        config.Config
	configFile string
	json       bool
	args       []string

	// client create
	name, grantTypes, scopes, audiences, defaultScopes, redirectURIs string
	authMethod, jwksFile, claims                                     string
	clientTTL                                                        durationFlag
	dpopBound, introspect, requirePAR                                bool
	// user create, update, set-password
	username                       string
	passwordStdin, disable, enable bool
	// keys rotate
	alg string
	// token, decode
	issuer, clientID, clientSecret, scope, resource string
	// revoke
	revokeJTI, revokeClient, revokeSubject string
	// audit
	auditSince, auditUntil, auditEvent, format string
	auditLines                                 int
	auditAfter                                 int64
	follow, checkpoints                        bool
	// migrate
	print bool
	// policy eval
	request string
}

type command struct {
	path    string
	summary string
	args    int
	argHelp string
	flags   func(*flag.FlagSet, *options)
	run     func(context.Context, *Main, *options) error
}

var commands []*command

func init() {
	commands = []*command{
		{path: "serve", summary: "run the token service", flags: serverFlags, run: runServe},
		{path: "migrate", summary: "apply the store's pending schema migrations (or --print them)", flags: migrateFlags, run: runMigrate},
		{path: "dev", summary: "run everything on ./.sigil with a demo client, for a first try", flags: serverFlags, run: runDev},
		{path: "client create", summary: "register a client", flags: clientCreateFlags, run: runClientCreate},
		{path: "client list", summary: "list clients", flags: storeFlags, run: runClientList},
		{path: "client get", summary: "show a client", args: 1, argHelp: "CLIENT_ID", flags: storeFlags, run: runClientGet},
		{path: "client delete", summary: "delete a client", args: 1, argHelp: "CLIENT_ID", flags: storeFlags, run: runClientDelete},
		{path: "client rotate-secret", summary: "replace a client's secret", args: 1, argHelp: "CLIENT_ID", flags: storeFlags, run: runClientRotate},
		{path: "user create", summary: "add a user (the password is read from stdin)", flags: userCreateFlags, run: runUserCreate},
		{path: "user list", summary: "list users", flags: storeFlags, run: runUserList},
		{path: "user get", summary: "show a user", args: 1, argHelp: "ID|USERNAME", flags: storeFlags, run: runUserGet},
		{path: "user update", summary: "change a user's claims or username, or disable or enable it", args: 1, argHelp: "ID|USERNAME", flags: userUpdateFlags, run: runUserUpdate},
		{path: "user set-password", summary: "replace a user's password (read from stdin)", args: 1, argHelp: "ID|USERNAME", flags: userSetPasswordFlags, run: runUserSetPassword},
		{path: "user delete", summary: "delete a user and revoke their tokens", args: 1, argHelp: "ID|USERNAME", flags: storeFlags, run: runUserDelete},
		{path: "keys list", summary: "list signing keys", flags: storeFlags, run: runKeysList},
		{path: "keys rotate", summary: "add a signing key (published now, signing after keys.prepublish)", flags: keysRotateFlags, run: runKeysRotate},
		{path: "revoke", summary: "revoke tokens by --jti, --client or --subject", flags: revokeFlags, run: runRevoke},
		{path: "token", summary: "get an access token with client credentials", flags: tokenFlags, run: runToken},
		{path: "audit verify", summary: "check the audit trail's hash chain and signed checkpoints", flags: auditVerifyFlags, run: runAuditVerify},
		{path: "audit tail", summary: "show the latest audit records (--follow for new ones)", flags: auditTailFlags, run: runAuditTail},
		{path: "audit export", summary: "write audit records as JSON lines, for a SIEM", flags: auditExportFlags, run: runAuditExport},
		{path: "policy validate", summary: "check a policy directory; errors are listed as file:line", flags: policyFlags, run: runPolicyValidate},
		{path: "policy eval", summary: "decide one AuthZEN request (or batch) from --request FILE or - on a policy directory", flags: policyEvalFlags, run: runPolicyEval},
		{path: "policy test", summary: "run the test cases (request → expected decision) in TESTS_DIR against a policy directory", args: 1, argHelp: "TESTS_DIR", flags: policyFlags, run: runPolicyTest},
		{path: "decode", summary: "print a JWT's header and claims; with --issuer, verify its signature", args: 1, argHelp: "TOKEN (or - for stdin)", flags: decodeFlags, run: runDecode},
	}
}

func findCommand(path []string) *command {
	p := strings.Join(path, " ")
	for _, c := range commands {
		if c.path == p {
			return c
		}
	}
	return nil
}

func (m *Main) printUsage() {
	fmt.Fprintln(m.Stderr, "usage: sigil COMMAND [flags]   (sigil COMMAND -h lists a command's flags)")
	tw := tabwriter.NewWriter(m.Stderr, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.path, c.argHelp, c.summary)
	}
	tw.Flush()
}

// storeFlags are the flags of every command that touches state.
func storeFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.cfg.DataDir, "data-dir", o.cfg.DataDir, "embedded store directory (created 0700)")
	fs.StringVar(&o.cfg.DSN, "dsn", "", "PostgreSQL store URL instead of --data-dir")
	fs.StringVar(&o.configFile, "config", "", "YAML config file")
	fs.BoolVar(&o.json, "json", false, "print JSON on stdout")
	fs.DurationVar(&o.cfg.AccessTokenMaxTTL, "access-token-max-ttl", o.cfg.AccessTokenMaxTTL, "longest access-token lifetime any client may get")
	fs.DurationVar(&o.cfg.KeysPrepublish, "keys-prepublish", o.cfg.KeysPrepublish, "how long a new key is published before it signs")
	fs.StringVar(&o.cfg.AccessTokenAlg, "access-token-alg", o.cfg.AccessTokenAlg, "access-token signing algorithm: ES256, EdDSA, RS256 or PS256")
}

func serverFlags(fs *flag.FlagSet, o *options) {
	storeFlags(fs, o)
	fs.StringVar(&o.cfg.Listen, "listen", o.cfg.Listen, "public listener address")
	fs.StringVar(&o.cfg.AdminListen, "admin-listen", o.cfg.AdminListen, "admin API listener address (empty: off)")
	fs.StringVar(&o.cfg.Issuer, "issuer", "", "issuer URL (default http:// + --listen)")
	fs.DurationVar(&o.cfg.AccessTokenTTL, "access-token-ttl", o.cfg.AccessTokenTTL, "access-token lifetime for clients that set none")
	fs.DurationVar(&o.cfg.Leeway, "leeway", o.cfg.Leeway, "clock skew tolerated on incoming JWTs")
	fs.DurationVar(&o.cfg.CacheRefresh, "cache-refresh", o.cfg.CacheRefresh, "how often to look for changes made by the CLI or other nodes")
	fs.DurationVar(&o.cfg.ShutdownTimeout, "shutdown-timeout", o.cfg.ShutdownTimeout, "how long SIGTERM waits for in-flight requests and the audit flush")
	fs.StringVar(&o.cfg.NodeID, "node-id", "", "this node's name in audit records (default: the host name)")
	fs.BoolVar(&o.cfg.AuditEnabled, "audit-enabled", o.cfg.AuditEnabled, "keep the audit trail (--audit-enabled=false only to measure its cost)")
	fs.IntVar(&o.cfg.AuditQueue, "audit-queue", o.cfg.AuditQueue, "audit records that may wait to be written before requests are held back")
	fs.IntVar(&o.cfg.AuditCheckpointEvery, "audit-checkpoint-every", o.cfg.AuditCheckpointEvery, "sign an audit checkpoint after this many records")
	fs.DurationVar(&o.cfg.AuditCheckpointInterval, "audit-checkpoint-interval", o.cfg.AuditCheckpointInterval, "or after this much time with new records")
	fs.BoolVar(&o.cfg.DPoPNonce, "dpop-nonce", o.cfg.DPoPNonce, "demand server-provided nonces in DPoP proofs")
	fs.DurationVar(&o.cfg.RequestTimeout, "request-timeout", o.cfg.RequestTimeout, "how long a request may wait on the store before it fails (503)")
	fs.DurationVar(&o.cfg.StatusListTTL, "status-list-ttl", o.cfg.StatusListTTL, "how long resource servers cache a status list (the longest a revocation takes to reach them)")
	fs.DurationVar(&o.cfg.SessionTTL, "session-ttl", o.cfg.SessionTTL, "how long a browser stays signed in")
	fs.DurationVar(&o.cfg.DeviceCodeTTL, "device-code-ttl", o.cfg.DeviceCodeTTL, "how long a device authorization (RFC 8628) waits for its user to enter the code")
	fs.DurationVar(&o.cfg.DevicePollInterval, "device-poll-interval", o.cfg.DevicePollInterval, "the least time between a device's polls of the token endpoint")
	fs.IntVar(&o.cfg.DelegationMaxDepth, "delegation-max-depth", o.cfg.DelegationMaxDepth, "how many actors the act chain of an exchanged token may hold")
	fs.DurationVar(&o.cfg.RefreshTokenIdleTTL, "refresh-token-idle-ttl", o.cfg.RefreshTokenIdleTTL, "how long an unused refresh token lives")
	fs.DurationVar(&o.cfg.RefreshTokenMaxTTL, "refresh-token-max-ttl", o.cfg.RefreshTokenMaxTTL, "how long a family of rotated refresh tokens lives in all")
	fs.StringVar(&o.cfg.IDTokenAlg, "id-token-alg", o.cfg.IDTokenAlg, "ID-token signing algorithm: RS256 (default), ES256, EdDSA or PS256")
	fs.Var((*listFlag)(&o.cfg.TrustedProxies), "trusted-proxies", "reverse proxies (CIDR prefixes or addresses, comma-separated) whose X-Forwarded-For names the client, for the sign-in limits")
	fs.BoolVar(&o.cfg.RegistrationOpen, "open-registration", o.cfg.RegistrationOpen, "let anyone register clients at {issuer}/register (RFC 7591) without an initial access token")
	fs.StringVar(&o.cfg.RegistrationToken, "registration-token", "", "initial access token for client registration (RFC 7591); prefer SIGIL_REGISTRATION_TOKEN")
	fs.Var((*listFlag)(&o.cfg.RegistrationScopes), "registration-scopes", "scopes a dynamically registered or metadata-document client may get (space- or comma-separated)")
	fs.Var((*listFlag)(&o.cfg.RegistrationAudiences), "registration-audiences", "resource URLs such clients may ask tokens for (comma-separated; default: the issuer only)")
	fs.BoolVar(&o.cfg.ClientMetadataDocuments, "client-metadata-documents", o.cfg.ClientMetadataDocuments, "accept https URLs as client_ids naming client metadata documents")
	fs.StringVar(&o.cfg.ClientMetadataCAFile, "client-metadata-ca-file", "", "PEM certificates trusted, besides the system's, when fetching client metadata documents")
	fs.BoolVar(&o.cfg.ClientMetadataUnsafeAllowLoopback, "client-metadata-unsafe-allow-loopback", false, "TESTS ONLY: also fetch client metadata documents from loopback addresses")
	fs.StringVar(&o.cfg.PolicyDir, "policy-dir", "", "directory of Cedar or Rego policies: serves the AuthZEN API and reloads the files when they change")
	fs.StringVar(&o.cfg.PolicyEngine, "policy-engine", "", "policy language of --policy-dir: cedar or rego (default: detected from the files)")
	fs.DurationVar(&o.cfg.PolicyReloadInterval, "policy-reload-interval", o.cfg.PolicyReloadInterval, "how often to look for changed policy files (0: never)")
	fs.StringVar(&o.cfg.AuthZENScope, "authzen-scope", o.cfg.AuthZENScope, "scope a caller's access token needs for the AuthZEN API")
	fs.BoolVar(&o.cfg.PolicyAuditDecisions, "policy-audit-decisions", o.cfg.PolicyAuditDecisions, "record every policy decision in the audit trail")
	fs.Var((*trustedIssuersFlag)(&o.cfg.TrustedIssuers), config.TrustedIssuersKey, "external issuers whose JWTs map to clients (JWT bearer grant, token exchange): a JSON list, as federation.trusted-issuers in the config file")
}

// policyFlags are the flags of the policy commands, which touch no store.
func policyFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.cfg.PolicyDir, "policy-dir", "", "directory of Cedar or Rego policies (required)")
	fs.StringVar(&o.cfg.PolicyEngine, "policy-engine", "", "policy language: cedar or rego (default: detected from the files)")
	fs.StringVar(&o.configFile, "config", "", "YAML config file")
}

func policyEvalFlags(fs *flag.FlagSet, o *options) {
	policyFlags(fs, o)
	fs.StringVar(&o.request, "request", "", "file holding the AuthZEN request JSON, or - for stdin (required)")
}

// trustedIssuersFlag is the list of trusted issuers, given as JSON (or
// YAML flow syntax); each Set replaces the list.
type trustedIssuersFlag []config.TrustedIssuer

func (l *trustedIssuersFlag) String() string {
	if l == nil {
		return ""
	}
	return config.FormatTrustedIssuers(*l)
}

func (l *trustedIssuersFlag) Set(s string) error {
	list, err := config.ParseTrustedIssuers(s)
	if err != nil {
		return err
	}
	*l = list
	return nil
}

// listFlag is a list of values given space- or comma-separated; each Set
// replaces the list.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, " ")
}

func (l *listFlag) Set(s string) error {
	*l = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	return nil
}

// openCore opens the store and keys for a CLI command.
func openCore(ctx context.Context, o *options) (*server.Core, error) {
	return server.OpenCore(ctx, o.cfg)
}
