// Package e2e holds end-to-end tests that drive a real `sigil serve` with
// independent clients, as a relying party would: headless Chromium through
// the sign-in and consent pages of the authorization code flow (RFC 6749
// §4.1 with PKCE, RFC 7636, and OpenID Connect Core 1.0) in front of a Go
// relying party built on golang.org/x/oauth2 and go-oidc, and the npm
// openid-client package run by Node.js; and the device authorization
// grant (RFC 8628), a net/http device polling while the browser enters
// its user code, signs in and decides.
//
// The package has no code of its own outside its tests. The tests build
// the sigil binary and talk to it only through the command line and HTTP
// contract (../shared/CONTRACT.md), on loopback ports and temporary data
// directories.
//
// They need Chromium (SIGIL_CHROMIUM, or chromium on PATH: Debian's
// chromium package), Node.js 20 or newer, and the Node client's packages
// (`npm ci --prefix e2e/node`); without them they fail, never skip, in
// -short mode too. Screenshots of each page go to $SIGIL_SCREENSHOTS, or to
// sigil-screenshots under the system's temporary directory.
package e2e
