// rp.mjs is a relying party built on openid-client (v6), independent of
// Sigil's own code, that TestNodeClient runs against a real `sigil serve`.
//
// It discovers the issuer, builds an authorization URL with PKCE (S256),
// state and nonce, then plays the browser itself over HTTP: it fetches
// the sign-in page, posts the credentials with the page's csrf_token and
// ticket, posts Allow on the consent page, and takes the redirect to the
// callback without following it. openid-client then validates the
// authorization response (state, iss per RFC 9207) and the ID token
// (signature, iss, aud, nonce), and the script calls UserInfo, refreshes,
// and tries the spent refresh token once more. It prints one JSON summary
// on stdout and exits 0, or prints the error on stderr and exits 1.
//
// Input, from the environment: SIGIL_ISSUER, CLIENT_ID, CLIENT_SECRET
// (empty for a public client, which authenticates with "none"),
// REDIRECT_URI, USERNAME, PASSWORD.

import * as client from 'openid-client';

const env = (name, optional = false) => {
  const v = process.env[name];
  if (!v && !optional) throw new Error(`${name} is not set`);
  return v ?? '';
};

/** CookieJar keeps name=value cookies for one origin, as a browser would. */
class CookieJar {
  #cookies = new Map();

  /** store reads the Set-Cookie headers of a response. */
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-)/i.test(a));
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  /** header is the Cookie request header, or undefined with no cookies. */
  header() {
    if (this.#cookies.size === 0) return undefined;
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** Browser fetches like a browser without JavaScript: cookies, and forms. */
class Browser {
  jar = new CookieJar();

  /**
   * request sends one request without following redirects and returns
   * the response with its body text read.
   */
  async request(url, { method = 'GET', form } = {}) {
    const headers = { accept: 'text/html' };
    const cookie = this.jar.header();
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.jar.store(response);
    const text = await response.text();
    return { url: new URL(url), status: response.status, location: response.headers.get('location'), text };
  }

  /**
   * follow requests url and follows redirects within the issuer's origin,
   * returning the first response that is not such a redirect (a page, or
   * a redirect elsewhere: the callback).
   */
  async follow(url, origin, init) {
    let r = await this.request(url, init);
    for (let hops = 0; r.status >= 300 && r.status < 400 && r.location; hops++) {
      const next = new URL(r.location, r.url);
      if (next.origin !== origin || hops > 10) break;
      r = await this.request(next, {});
    }
    return r;
  }
}

/** formOf returns the action URL and hidden fields of the form posting to path. */
function formOf(page, path) {
  const forms = [...page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
  for (const [, attrs, inner] of forms) {
    const action = attr(attrs, 'action');
    const method = attr(attrs, 'method') ?? 'get';
    if (action === undefined || method.toLowerCase() !== 'post') continue;
    const url = new URL(decodeEntities(action), page.url);
    if (!url.pathname.endsWith(path)) continue;
    const fields = {};
    for (const [input] of inner.matchAll(/<input\b[^>]*>/gi)) {
      if ((attr(input, 'type') ?? '').toLowerCase() !== 'hidden') continue;
      fields[attr(input, 'name')] = decodeEntities(attr(input, 'value') ?? '');
    }
    return { url, fields };
  }
  throw new Error(`no form posting to …${path} on ${page.url} (status ${page.status}):\n${page.text}`);
}

/** attr returns an HTML attribute's value from a tag's text, if present. */
function attr(tag, name) {
  const m = tag.match(new RegExp(`\\b${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
}

/** decodeEntities decodes the character references html/template writes. */
function decodeEntities(s) {
  return s
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** signIn plays the user: sign-in page, credentials, Allow; returns the callback URL. */
async function signIn(authorizationURL, issuer, username, password) {
  const origin = new URL(issuer).origin;
  const browser = new Browser();
  const signInPage = await browser.follow(authorizationURL, origin);
  const login = formOf(signInPage, '/login');
  const consentPage = await browser.follow(login.url, origin, {
    method: 'POST',
    form: { ...login.fields, username, password },
  });
  const consent = formOf(consentPage, '/consent');
  const done = await browser.request(consent.url, { method: 'POST', form: { ...consent.fields, decision: 'allow' } });
  if (done.status < 300 || done.status >= 400 || !done.location) {
    throw new Error(`Allow answered ${done.status} without a redirect:\n${done.text}`);
  }
  return { callback: new URL(done.location, consent.url), allowStatus: done.status };
}

async function main() {
  const issuer = env('SIGIL_ISSUER');
  const clientId = env('CLIENT_ID');
  const clientSecret = env('CLIENT_SECRET', true);
  const redirectURI = env('REDIRECT_URI');

  // Sigil runs on plain HTTP on loopback in the tests.
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    clientSecret ? { client_secret: clientSecret } : undefined,
    clientSecret ? client.ClientSecretBasic(clientSecret) : client.None(),
    { execute: [client.allowInsecureRequests] },
  );

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationURL = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectURI,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });

  const { callback, allowStatus } = await signIn(authorizationURL, issuer, env('USERNAME'), env('PASSWORD'));

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const idClaims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  let reuseError = null;
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token);
  } catch (err) {
    reuseError = err.error ?? err.code ?? String(err);
  }

  const [header] = tokens.id_token.split('.');
  const summary = {
    allow_status: allowStatus,
    callback_iss: callback.searchParams.get('iss'),
    id_token_header: JSON.parse(Buffer.from(header, 'base64url').toString()),
    id_token: { iss: idClaims.iss, sub: idClaims.sub, aud: idClaims.aud, nonce_matched: idClaims.nonce === nonce },
    token_type: tokens.token_type,
    scope: tokens.scope,
    userinfo,
    refresh: {
      access_token_changed: refreshed.access_token !== tokens.access_token,
      refresh_token_rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
      reuse_error: reuseError,
    },
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}

main().catch((err) => {
  const detail = err.cause ? ` (cause: ${JSON.stringify(err.cause)})` : '';
  process.stderr.write(`rp.mjs: ${err.stack ?? err}${detail}\n`);
  process.exit(1);
});
