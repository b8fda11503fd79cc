// Self-test for the sandbox service: `node sandbox/selftest.mjs` (from end2end/).
//
// Starts sandbox/server.mjs on a free port as a child process and exercises it
// over HTTP the way the app and the browser would: discovery, the full
// authorization-code + PKCE flow driven through the HTML login/consent forms,
// token exchange, CRM pagination, refresh-token rotation, revocation, the deny
// path, API-key and basic-auth APIs, failure injection and the stats hooks.
// Prints "N passed, M failed" and exits non-zero on any failure.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = path.dirname(fileURLToPath(import.meta.url));
const serverPath = path.join(here, 'server.mjs');

let passed = 0;
let failed = 0;
const children = new Set();

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   - ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL - ${name}\n       ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n       ')}`);
  }
}

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

function startServer(extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serverPath], {
      env: { ...process.env, SANDBOX_PORT: '0', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`sandbox did not start in time\n${stderr}`)), 15_000);
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('SANDBOX_READY '));
      if (line && stdout.includes('\n')) {
        clearTimeout(timer);
        const info = JSON.parse(line.slice('SANDBOX_READY '.length));
        resolve({ ...info, child, getStdout: () => stdout, getStderr: () => stderr });
      }
    });
    child.on('exit', (code) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`sandbox exited early with ${code}\n${stderr}`));
    });
  });
}

function stopServer(srv) {
  return new Promise((resolve) => {
    if (srv.child.exitCode !== null) return resolve();
    srv.child.once('exit', () => resolve());
    srv.child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------------------
// HTTP helpers: a tiny cookie jar (name + path matching) and a manual redirect
// walker, standing in for a browser.
// ---------------------------------------------------------------------------

class CookieJar {
  #cookies = new Map(); // `${name}\0${path}` -> { name, value, path }

  store(res) {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cookiePath = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path') cookiePath = v;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name}\0${cookiePath}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path: cookiePath });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const matching = [...this.#cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function browserFetch(jar, url, init = {}) {
  const headers = new Headers(init.headers);
  const cookie = jar.header(url);
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(res);
  return res;
}

// Follows redirects until an HTML page is returned or the client's
// redirect_uri is reached. Returns { page: {url, html, status} } or { callback: URL }.
async function walk(jar, startUrl, redirectUri, init = {}) {
  let url = startUrl;
  let req = init;
  for (let hops = 0; hops < 15; hops += 1) {
    const res = await browserFetch(jar, url, req);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url).href;
      await res.arrayBuffer();
      if (next.startsWith(redirectUri)) return { callback: new URL(next) };
      url = next;
      req = {};
      continue;
    }
    return { page: { url, status: res.status, html: await res.text() } };
  }
  throw new Error('too many redirects');
}

function formWithButton(html, buttonText) {
  const forms = [...html.matchAll(/<form\b[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => new RegExp(`<button[^>]*>\\s*${buttonText}\\s*</button>`).test(f[2]));
  assert.ok(form, `no form with button "${buttonText}" in:\n${html}`);
  return form[1].replace(/&amp;/g, '&');
}

function postForm(jar, baseUrl, action, fields, redirectUri) {
  return walk(jar, new URL(action, baseUrl).href, redirectUri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// OAuth client authentication (RFC 6749 2.3.1: form-encoded id and secret).
function basic(user, pass) {
  return `Basic ${Buffer.from(`${encodeURIComponent(user)}:${encodeURIComponent(pass)}`).toString('base64')}`;
}

// Plain HTTP basic auth (RFC 7617).
function rawBasic(user, pass) {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`expected JSON (status ${res.status}), got: ${text.slice(0, 300)}`);
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

async function main() {
  const srv = await startServer({ SANDBOX_API_KEYS: 'extra-key-1, extra-key-2' });
  const { issuer } = srv;
  const api = (p) => `${issuer}${p}`;
  let disco;

  await check('ready line is the only stdout output and issuer is loopback', async () => {
    assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(srv.port, Number(new URL(issuer).port));
    assert.equal(srv.getStdout().trim().split('\n').length, 1);
  });

  await check('healthz', async () => {
    const res = await fetch(api('/_sandbox/healthz'));
    assert.equal(res.status, 200);
  });

  await check('discovery advertises PKCE S256, revocation, introspection, iss parameter', async () => {
    const res = await fetch(api('/.well-known/openid-configuration'));
    assert.equal(res.status, 200);
    disco = await json(res);
    assert.equal(disco.issuer, issuer);
    assert.deepEqual(disco.code_challenge_methods_supported, ['S256']);
    assert.equal(disco.authorization_response_iss_parameter_supported, true);
    assert.equal(disco.authorization_endpoint, api('/auth'));
    assert.equal(disco.token_endpoint, api('/token'));
    assert.equal(disco.revocation_endpoint, api('/token/revocation'));
    assert.equal(disco.introspection_endpoint, api('/token/introspection'));
    for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
      assert.ok(disco.grant_types_supported.includes(g), g);
    }
    for (const m of ['client_secret_basic', 'client_secret_post']) {
      assert.ok(disco.token_endpoint_auth_methods_supported.includes(m), m);
    }
  });

  await fetch(api('/_sandbox/reset-stats'), { method: 'POST' });

  // Drives the browser part of the flow. Returns the callback URL.
  async function authorize({
    clientId = 'crm-connector', redirectUri, scope, username = 'alice', password, decision = 'Allow',
    state = crypto.randomBytes(8).toString('hex'), challenge, jar = new CookieJar(), onLoginPage, onConsentPage,
    wrongPasswordFirst = false,
  }) {
    const params = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state,
      code_challenge: challenge, code_challenge_method: 'S256',
    });
    let step = await walk(jar, `${disco.authorization_endpoint}?${params}`, redirectUri);
    assert.ok(step.page, `expected login page, got callback ${step.callback}`);
    assert.equal(step.page.status, 200);
    onLoginPage?.(step.page.html);
    const loginAction = formWithButton(step.page.html, 'Sign in');
    if (wrongPasswordFirst) {
      const bad = await postForm(jar, step.page.url, loginAction, { username, password: 'nope' }, redirectUri);
      assert.ok(bad.page, 'wrong password must re-render the login page');
      assert.match(bad.page.html, /Invalid username or password/);
      assert.match(bad.page.html, /Sign in to Sandbox CRM/);
    }
    step = await postForm(jar, step.page.url, loginAction, {
      username, password: password ?? `${username}-password`,
    }, redirectUri);
    if (step.callback) return { callback: step.callback, state, jar };
    onConsentPage?.(step.page.html);
    const action = formWithButton(step.page.html, decision);
    step = await postForm(jar, step.page.url, action, {}, redirectUri);
    assert.ok(step.callback, `expected redirect to client, got page:\n${step.page?.html}`);
    return { callback: step.callback, state, jar };
  }

  async function token(fields, auth = { basic: ['crm-connector', 'crm-connector-secret'] }) {
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams(fields);
    if (auth.basic) headers.authorization = basic(...auth.basic);
    if (auth.post) {
      body.set('client_id', auth.post[0]);
      body.set('client_secret', auth.post[1]);
    }
    const res = await fetch(disco.token_endpoint, { method: 'POST', headers, body });
    return { status: res.status, body: await json(res) };
  }

  const get = (p, headers = {}) => fetch(api(p), { headers });
  const bearer = (t) => ({ authorization: `Bearer ${t}` });

  // --- Authorization code + PKCE (alice, crm-connector, random loopback port) ---
  const redirect127 = `http://127.0.0.1:${40000 + Math.floor(Math.random() * 20000)}/oauth/callback`;
  const pkce = pkcePair();
  let alice; // token response
  let aliceCallback;

  await check('authorization code flow through login + consent forms (loopback redirect on any port)', async () => {
    let loginHtml;
    let consentHtml;
    const r = await authorize({
      redirectUri: redirect127,
      scope: 'openid profile email crm.deals.read crm.contacts.read',
      challenge: pkce.challenge,
      wrongPasswordFirst: true,
      onLoginPage: (h) => { loginHtml = h; },
      onConsentPage: (h) => { consentHtml = h; },
    });
    assert.match(loginHtml, /<h1>Sign in to Sandbox CRM<\/h1>/);
    assert.match(loginHtml, /<label for="username">Username<\/label>/);
    assert.match(loginHtml, /<input id="username"/);
    assert.match(loginHtml, /<label for="password">Password<\/label>/);
    assert.match(loginHtml, /<input id="password"[^>]*type="password"/);
    assert.match(consentHtml, /crm-connector/);
    assert.match(consentHtml, /crm\.deals\.read/);
    assert.match(consentHtml, /crm\.contacts\.read/);
    assert.match(consentHtml, />\s*Allow\s*</);
    assert.match(consentHtml, />\s*Deny\s*</);
    assert.equal(r.callback.origin + r.callback.pathname, redirect127);
    assert.equal(r.callback.searchParams.get('state'), r.state);
    assert.equal(r.callback.searchParams.get('iss'), issuer);
    assert.ok(r.callback.searchParams.get('code'));
    aliceCallback = r.callback;
  });

  await check('token exchange rejects a wrong PKCE verifier', async () => {
    const { status, body } = await token({
      grant_type: 'authorization_code', code: aliceCallback.searchParams.get('code'),
      redirect_uri: redirect127, code_verifier: pkcePair().verifier,
    });
    assert.equal(status, 400);
    assert.equal(body.error, 'invalid_grant');
  });

  await check('token exchange (client_secret_basic) returns access + refresh tokens', async () => {
    const { status, body } = await token({
      grant_type: 'authorization_code', code: aliceCallback.searchParams.get('code'),
      redirect_uri: redirect127, code_verifier: pkce.verifier,
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    assert.ok(body.access_token);
    assert.ok(body.refresh_token, 'refresh token issued without offline_access');
    assert.ok(body.id_token);
    assert.equal(body.expires_in, 3600);
    const scopes = body.scope.split(' ');
    assert.ok(scopes.includes('crm.deals.read') && scopes.includes('crm.contacts.read'), body.scope);
    alice = body;
  });

  await check('CRM /me names the authorized account', async () => {
    const res = await get('/api/crm/me', bearer(alice.access_token));
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { account: 'alice', name: 'Alice Sandbox', email: 'alice@sandbox.test' });
  });

  await check('CRM Deals pagination', async () => {
    let res = await get('/api/crm/Deals', bearer(alice.access_token));
    assert.equal(res.status, 200);
    let body = await json(res);
    assert.deepEqual(body.info, { page: 1, per_page: 50, count: 50, more_records: true });
    assert.equal(body.data[0].id, 'D-0001');
    assert.deepEqual(Object.keys(body.data[0]).sort(), ['amount', 'id', 'name', 'stage', 'updated_at']);
    assert.match(body.data[0].name, /^Deal 1\b/);

    res = await get('/api/crm/Deals?page=3&per_page=100', bearer(alice.access_token));
    body = await json(res);
    assert.deepEqual(body.info, { page: 3, per_page: 100, count: 50, more_records: false });
    assert.equal(body.data[0].id, 'D-0201');
    assert.equal(body.data.at(-1).id, 'D-0250');

    res = await get('/api/crm/Deals?page=1&per_page=1000', bearer(alice.access_token));
    body = await json(res);
    assert.equal(body.info.per_page, 200);
    assert.equal(body.data.length, 200);

    // stage filter: every deal in the list has that stage; all 250 / 6 of them, paginated
    res = await get('/api/crm/Deals?stage=Proposal&per_page=200', bearer(alice.access_token));
    body = await json(res);
    assert.equal(res.status, 200);
    assert.equal(body.data.length, 42);
    assert.ok(body.data.every((d) => d.stage === 'Proposal'));
    assert.equal(body.info.more_records, false);
    res = await get('/api/crm/Deals?stage=All&per_page=200', bearer(alice.access_token));
    assert.equal((await json(res)).data.length, 200);
    res = await get('/api/crm/Deals?stage=Nope', bearer(alice.access_token));
    assert.equal(res.status, 400);

    res = await get('/api/crm/Deals?page=99', bearer(alice.access_token));
    body = await json(res);
    assert.deepEqual(body.info, { page: 99, per_page: 50, count: 0, more_records: false });

    // deterministic
    const again = await json(await get('/api/crm/Deals?page=3&per_page=100', bearer(alice.access_token)));
    const first = await json(await get('/api/crm/Deals?page=3&per_page=100', bearer(alice.access_token)));
    assert.deepEqual(again, first);

    res = await get('/api/crm/Deals?page=0', bearer(alice.access_token));
    assert.equal(res.status, 400);
  });

  await check('CRM Contacts records and unknown module', async () => {
    let res = await get('/api/crm/Contacts?per_page=2', bearer(alice.access_token));
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.data[0].id, 'C-0001');
    for (const k of ['first_name', 'last_name', 'email']) assert.ok(body.data[0][k], k);
    res = await get('/api/crm/Leads', bearer(alice.access_token));
    assert.equal(res.status, 404);
    assert.deepEqual(await json(res), { error: 'unknown_module' });
  });

  await check('CRM rejects missing and bogus tokens with 401 invalid_token', async () => {
    for (const headers of [{}, bearer('not-a-real-token'), { authorization: 'Basic Zm9vOmJhcg==' }]) {
      const res = await get('/api/crm/Deals', headers);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/);
    }
  });

  await check('introspection reports the access token active', async () => {
    const res = await fetch(disco.introspection_endpoint, {
      method: 'POST',
      headers: { authorization: basic('crm-connector', 'crm-connector-secret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: alice.access_token }),
    });
    const body = await json(res);
    assert.equal(body.active, true);
    assert.equal(body.sub, 'alice');
    assert.equal(body.client_id, 'crm-connector');
  });

  let rotated;
  await check('refresh rotates the refresh token (client_secret_post)', async () => {
    const { status, body } = await token(
      { grant_type: 'refresh_token', refresh_token: alice.refresh_token },
      { post: ['crm-connector', 'crm-connector-secret'] },
    );
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(body.refresh_token);
    assert.notEqual(body.refresh_token, alice.refresh_token);
    assert.notEqual(body.access_token, alice.access_token);
    const res = await get('/api/crm/Deals?per_page=1', bearer(body.access_token));
    assert.equal(res.status, 200);
    rotated = body;
  });

  await check('rotated-out refresh token is rejected with invalid_grant (and the grant is revoked)', async () => {
    const { status, body } = await token({ grant_type: 'refresh_token', refresh_token: alice.refresh_token });
    assert.equal(status, 400);
    assert.equal(body.error, 'invalid_grant');
    // oidc-provider treats reuse as replay and revokes the whole grant
    const again = await token({ grant_type: 'refresh_token', refresh_token: rotated.refresh_token });
    assert.equal(again.body.error, 'invalid_grant');
    const res = await get('/api/crm/me', bearer(rotated.access_token));
    assert.equal(res.status, 401);
  });

  await check('refresh with the wrong client secret fails with invalid_client', async () => {
    const { status, body } = await token(
      { grant_type: 'refresh_token', refresh_token: rotated.refresh_token },
      { basic: ['crm-connector', 'wrong'] },
    );
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
  });

  // --- bob, dropbox-like, localhost redirect, narrower scope ---
  let bob;
  await check('second client with localhost redirect, narrower scope, client_secret_post exchange', async () => {
    const redirectLocalhost = `http://localhost:${40000 + Math.floor(Math.random() * 20000)}/oauth/callback`;
    const p = pkcePair();
    const r = await authorize({
      clientId: 'dropbox-like', redirectUri: redirectLocalhost, scope: 'crm.contacts.read files.read',
      username: 'bob', challenge: p.challenge,
    });
    assert.equal(r.callback.searchParams.get('iss'), issuer);
    const { status, body } = await token({
      grant_type: 'authorization_code', code: r.callback.searchParams.get('code'),
      redirect_uri: redirectLocalhost, code_verifier: p.verifier,
    }, { post: ['dropbox-like', 'dropbox-like-secret'] });
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(body.refresh_token);
    assert.equal(body.id_token, undefined);
    bob = body;
    const me = await json(await get('/api/crm/me', bearer(bob.access_token)));
    assert.equal(me.account, 'bob');
    assert.equal((await get('/api/files', bearer(bob.access_token))).status, 200);
  });

  await check('token without crm.deals.read gets 403 insufficient_scope on Deals', async () => {
    let res = await get('/api/crm/Deals', bearer(bob.access_token));
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate'), /error="insufficient_scope"/);
    assert.equal((await json(res)).error, 'insufficient_scope');
    res = await get('/api/crm/Contacts', bearer(bob.access_token));
    assert.equal(res.status, 200);
  });

  await check('revoked access token gets 401 from the CRM', async () => {
    const res = await fetch(disco.revocation_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: bob.access_token, token_type_hint: 'access_token',
        client_id: 'dropbox-like', client_secret: 'dropbox-like-secret',
      }),
    });
    assert.equal(res.status, 200);
    const crm = await get('/api/crm/Contacts', bearer(bob.access_token));
    assert.equal(crm.status, 401);
    assert.match(crm.headers.get('www-authenticate'), /error="invalid_token"/);
  });

  await check('revoked refresh token can no longer be used', async () => {
    const res = await fetch(disco.revocation_endpoint, {
      method: 'POST',
      headers: { authorization: basic('dropbox-like', 'dropbox-like-secret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: bob.refresh_token }),
    });
    assert.equal(res.status, 200);
    const { body } = await token(
      { grant_type: 'refresh_token', refresh_token: bob.refresh_token },
      { basic: ['dropbox-like', 'dropbox-like-secret'] },
    );
    assert.equal(body.error, 'invalid_grant');
  });

  await check('"Deny" returns error=access_denied to the redirect_uri', async () => {
    const r = await authorize({
      redirectUri: redirect127, scope: 'crm.deals.read', challenge: pkcePair().challenge, decision: 'Deny',
    });
    assert.equal(r.callback.searchParams.get('error'), 'access_denied');
    assert.equal(r.callback.searchParams.get('error_description'), 'End-User aborted interaction');
    assert.equal(r.callback.searchParams.get('state'), r.state);
    assert.equal(r.callback.searchParams.get('iss'), issuer);
    assert.equal(r.callback.searchParams.get('code'), null);
  });

  let firstCode;
  await check('existing session + grant skips login and consent on re-authorization', async () => {
    const jar = new CookieJar();
    const p = pkcePair();
    const first = await authorize({ jar, redirectUri: redirect127, scope: 'crm.deals.read', challenge: p.challenge });
    assert.ok(first.callback.searchParams.get('code'));
    firstCode = { code: first.callback.searchParams.get('code'), verifier: p.verifier };
    const params = new URLSearchParams({
      response_type: 'code', client_id: 'crm-connector', redirect_uri: redirect127, scope: 'crm.deals.read',
      state: 's2', code_challenge: pkcePair().challenge, code_challenge_method: 'S256',
    });
    const step = await walk(jar, `${disco.authorization_endpoint}?${params}`, redirect127);
    assert.ok(step.callback?.searchParams.get('code'));
    // prompt=login forces the login page again
    params.set('prompt', 'login');
    const forced = await walk(jar, `${disco.authorization_endpoint}?${params}`, redirect127);
    assert.ok(forced.page);
    assert.match(forced.page.html, /Sign in to Sandbox CRM/);
  });

  await check('authorization code replay fails and revokes the tokens issued from it', async () => {
    const fields = {
      grant_type: 'authorization_code', code: firstCode.code, redirect_uri: redirect127, code_verifier: firstCode.verifier,
    };
    const ok = await token(fields);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((await get('/api/crm/Deals?per_page=1', bearer(ok.body.access_token))).status, 200);
    const replay = await token(fields);
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
    assert.equal((await get('/api/crm/Deals?per_page=1', bearer(ok.body.access_token))).status, 401);
  });

  await check('unregistered redirect URIs are refused (no redirect)', async () => {
    for (const uri of [
      'http://evil.test/oauth/callback',
      'http://127.0.0.1:4567/other/callback',
      'http://127.0.0.1:4567/oauth/callback?x=1',
      'https://127.0.0.1:4567/oauth/callback',
      'http://127.0.0.2:4567/oauth/callback',
    ]) {
      const params = new URLSearchParams({
        response_type: 'code', client_id: 'crm-connector', redirect_uri: uri, scope: 'crm.deals.read',
        code_challenge: pkcePair().challenge, code_challenge_method: 'S256',
      });
      const res = await fetch(`${disco.authorization_endpoint}?${params}`, { redirect: 'manual' });
      assert.equal(res.status, 400, uri);
      assert.match(await res.text(), /redirect_uri/, uri);
    }
  });

  await check('authorization request without PKCE is rejected', async () => {
    const params = new URLSearchParams({
      response_type: 'code', client_id: 'crm-connector', redirect_uri: redirect127, scope: 'crm.deals.read', state: 'x',
    });
    const res = await fetch(`${disco.authorization_endpoint}?${params}`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const loc = new URL(res.headers.get('location'));
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.match(loc.searchParams.get('error_description'), /PKCE/);
  });

  await check('client_credentials for machine-client', async () => {
    const { status, body } = await token(
      { grant_type: 'client_credentials', scope: 'crm.deals.read' },
      { basic: ['machine-client', 'machine-client-secret'] },
    );
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.scope, 'crm.deals.read');
    assert.equal(body.refresh_token, undefined);
    assert.equal((await get('/api/crm/Deals?per_page=5', bearer(body.access_token))).status, 200);
    assert.equal((await get('/api/crm/Contacts', bearer(body.access_token))).status, 403);
    assert.deepEqual(await json(await get('/api/crm/me', bearer(body.access_token))), { account: null, client: 'machine-client' });
  });

  await check('weather API key: header, appid query, env keys; bad keys rejected', async () => {
    let res = await get('/api/weather?city=Paris', { 'x-api-key': 'sandbox-weather-key' });
    assert.equal(res.status, 200);
    const w = await json(res);
    assert.equal(w.city, 'Paris');
    assert.deepEqual(await json(await get('/api/weather?city=Paris&appid=sandbox-weather-key')), w);
    res = await get('/api/weather?city=Oslo', { 'x-api-key': 'extra-key-2' });
    assert.equal(res.status, 200);
    for (const [p, h] of [['/api/weather?city=Paris', {}], ['/api/weather?city=Paris', { 'x-api-key': 'wrong' }],
      ['/api/weather?city=Paris&appid=wrong', {}]]) {
      res = await get(p, h);
      assert.equal(res.status, 401, `${p} ${JSON.stringify(h)}`);
      assert.ok((await json(res)).error);
    }
  });

  await check('atlassian basic auth: good accepted, bad rejected with WWW-Authenticate: Basic', async () => {
    let res = await get('/api/atlassian/myself', { authorization: rawBasic('builder@sandbox.test', 'atlassian-api-token') });
    assert.equal(res.status, 200);
    const me = await json(res);
    assert.equal(me.emailAddress, 'builder@sandbox.test');
    assert.ok(me.displayName);
    for (const h of [{}, { authorization: rawBasic('builder@sandbox.test', 'wrong') }, bearer('x')]) {
      res = await get('/api/atlassian/myself', h);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate'), /^Basic/);
    }
  });

  await check('payments: a Stripe-like charge list behind Bearer sk_test_sandbox; bad keys and limits refused', async () => {
    let res = await get('/api/payments/charges?limit=3', { authorization: 'Bearer sk_test_sandbox' });
    assert.equal(res.status, 200);
    const list = await json(res);
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((c) => c.id), ['ch_0001', 'ch_0002', 'ch_0003']);
    assert.ok(list.data.every((c) => Number.isInteger(c.amount) && c.currency === 'usd'));
    for (const h of [{}, bearer('sk_test_wrong'), { authorization: 'sk_test_sandbox' }]) {
      res = await get('/api/payments/charges', h);
      assert.equal(res.status, 401);
      await res.arrayBuffer();
    }
    res = await get('/api/payments/charges?limit=x', { authorization: 'Bearer sk_test_sandbox' });
    assert.equal(res.status, 400);
  });

  // A fresh token for the failure-injection checks.
  const cc = (await token({ grant_type: 'client_credentials', scope: 'crm.deals.read crm.contacts.read' },
    { basic: ['machine-client', 'machine-client-secret'] })).body.access_token;

  await check('failure injection: 500, garbage, slow, off, times', async () => {
    const fail = (q) => fetch(api(`/_sandbox/fail?${q}`), { method: 'POST' });
    assert.equal((await fail('mode=500')).status, 200);
    let res = await get('/api/crm/Deals', bearer(cc));
    assert.equal(res.status, 500);
    await res.arrayBuffer();
    assert.equal((await get('/api/crm/Contacts', bearer(cc))).status, 500);

    await fail('mode=garbage');
    res = await get('/api/crm/Deals', bearer(cc));
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.throws(() => JSON.parse(text));

    await fail('mode=slow&delay_ms=400');
    let t0 = Date.now();
    res = await get('/api/crm/Deals?per_page=1', bearer(cc));
    assert.equal(res.status, 200);
    assert.ok(Date.now() - t0 >= 380, 'slow mode should delay');

    await fail('mode=slow');
    const ac = new AbortController();
    t0 = Date.now();
    setTimeout(() => ac.abort(), 500);
    await assert.rejects(fetch(api('/api/crm/Deals'), { headers: bearer(cc), signal: ac.signal }));
    assert.ok(Date.now() - t0 < 5_000);

    await fail('mode=off');
    assert.equal((await get('/api/crm/Deals', bearer(cc))).status, 200);

    await fail('mode=500&times=1');
    assert.equal((await get('/api/crm/Deals', bearer(cc))).status, 500);
    assert.equal((await get('/api/crm/Deals', bearer(cc))).status, 200);

    await fail('mode=500&times=1&skip=1');
    assert.equal((await get('/api/crm/Deals', bearer(cc))).status, 200);
    assert.equal((await get('/api/crm/Deals', bearer(cc))).status, 500);
    assert.equal((await get('/api/crm/Deals', bearer(cc))).status, 200);

    assert.equal((await fail('mode=bogus')).status, 400);
    await fail('mode=off');
  });

  await check('stats count token requests, revocations and API calls; reset works', async () => {
    let stats = await json(await fetch(api('/_sandbox/stats')));
    // code: wrong verifier, alice, bob, session test, replay; refresh: 1 ok + reuse, reuse,
    // wrong secret, revoked; client_credentials: 2
    assert.equal(stats.token_requests.authorization_code, 5, JSON.stringify(stats));
    assert.equal(stats.token_errors.authorization_code, 2);
    assert.equal(stats.token_requests.refresh_token, 5);
    assert.equal(stats.token_errors.refresh_token, 4);
    assert.equal(stats.token_requests.client_credentials, 2);
    assert.equal(stats.revocations, 2);
    assert.ok(stats.api_calls > 20);
    const before = stats.api_calls;
    await get('/api/weather?city=X', { 'x-api-key': 'sandbox-weather-key' });
    stats = await json(await fetch(api('/_sandbox/stats')));
    assert.equal(stats.api_calls, before + 1);
    const reset = await fetch(api('/_sandbox/reset-stats'), { method: 'POST' });
    assert.equal(reset.status, 200);
    stats = await json(await fetch(api('/_sandbox/stats')));
    assert.deepEqual(stats.token_requests, { authorization_code: 0, refresh_token: 0, client_credentials: 0 });
    assert.equal(stats.revocations, 0);
    assert.equal(stats.api_calls, 0);
  });

  await check('redirect endpoint: Location and status as asked, loop, bad input refused', async () => {
    const noFollow = (p) => fetch(api(p), { redirect: 'manual' });
    let res = await noFollow('/api/redirect?to=%2Fapi%2Fweather%3Fcity%3DPune');
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/api/weather?city=Pune');
    res = await noFollow('/api/redirect?status=307&to=http%3A%2F%2F127.0.0.1%3A9%2Fx');
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('location'), 'http://127.0.0.1:9/x');
    res = await noFollow('/api/redirect?loop=1&n=2');
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/api/redirect?loop=1&n=2');
    assert.equal((await noFollow('/api/redirect?status=200&to=%2F')).status, 400);
    assert.equal((await noFollow('/api/redirect')).status, 400);
  });

  await check('slow-token: a refresh answer held back after rotation; the old refresh token is spent', async () => {
    const p = pkcePair();
    const r = await authorize({ redirectUri: redirect127, scope: 'crm.deals.read', challenge: p.challenge });
    const first = await token({
      grant_type: 'authorization_code', code: r.callback.searchParams.get('code'),
      redirect_uri: redirect127, code_verifier: p.verifier,
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const fail = (q) => fetch(api(`/_sandbox/fail?${q}`), { method: 'POST' });
    assert.equal((await fail('mode=slow-token&times=1&delay_ms=60000')).status, 200);
    // The client gives up (or dies) while the answer is held back.
    const ac = new AbortController();
    const held = fetch(disco.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('crm-connector', 'crm-connector-secret') },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token }),
      signal: ac.signal,
    });
    for (let i = 0; i < 200; i += 1) {
      const stats = await json(await fetch(api('/_sandbox/stats')));
      if (stats.held_token_responses === 1) break;
      await new Promise((resolve) => { setTimeout(resolve, 25); });
    }
    ac.abort();
    await assert.rejects(held);
    assert.equal((await json(await fetch(api('/_sandbox/stats')))).failure_mode, 'off', 'times=1 reverts');
    // The provider rotated before holding the answer: the old refresh token is spent.
    const again = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
  });

  await stopServer(srv);

  // --- env vars: short access-token TTL, small record count, fixed redirect ---
  const srv2 = await startServer({
    SANDBOX_ACCESS_TOKEN_TTL: '2', SANDBOX_CRM_RECORDS: '7',
    SANDBOX_REDIRECT_URIS: 'https://app.example.test/cb,http://127.0.0.1:3999/oauth/callback',
  });
  await check('SANDBOX_ACCESS_TOKEN_TTL expires tokens; SANDBOX_CRM_RECORDS sizes modules', async () => {
    const res = await fetch(`${srv2.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic('machine-client', 'machine-client-secret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'crm.deals.read' }),
    });
    const tok = await json(res);
    // Expiry is checked in whole seconds: a 1 s token issued late in a second can already be
    // expired on the next request, so the lifetime is 2 s (at least one full second of use).
    assert.equal(tok.expires_in, 2);
    const list = await json(await fetch(`${srv2.issuer}/api/crm/Deals`, { headers: bearer(tok.access_token) }));
    assert.deepEqual(list.info, { page: 1, per_page: 50, count: 7, more_records: false });
    await new Promise((r) => { setTimeout(r, 3100); });
    const expired = await fetch(`${srv2.issuer}/api/crm/Deals`, { headers: bearer(tok.access_token) });
    assert.equal(expired.status, 401);
  });
  await check('SANDBOX_REDIRECT_URIS registers exact non-loopback URIs', async () => {
    const d = await json(await fetch(`${srv2.issuer}/.well-known/openid-configuration`));
    const jar = new CookieJar();
    const params = new URLSearchParams({
      response_type: 'code', client_id: 'crm-connector', redirect_uri: 'https://app.example.test/cb',
      scope: 'crm.deals.read', code_challenge: pkcePair().challenge, code_challenge_method: 'S256',
    });
    const step = await walk(jar, `${d.authorization_endpoint}?${params}`, 'https://app.example.test/cb');
    assert.ok(step.page && /Sign in to Sandbox CRM/.test(step.page.html));
    params.set('redirect_uri', 'https://app.example.test/other');
    const bad = await fetch(`${d.authorization_endpoint}?${params}`, { redirect: 'manual' });
    assert.equal(bad.status, 400);
  });
  await check('webhook receiver keeps raw deliveries for signature checks', async () => {
    const body = '{"type":"webhook.test"}';
    const res = await fetch(`${srv2.issuer}/_sandbox/webhooks/receive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' },
      body,
    });
    assert.equal(res.status, 204);
    const got = await json(await fetch(`${srv2.issuer}/_sandbox/webhooks`));
    assert.deepEqual(got.at(-1), {
      headers: { 'webhook-id': 'msg_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x', 'content-type': 'application/json' },
      body,
    });
  });
  await stopServer(srv2);
}

try {
  await main();
} catch (err) {
  failed += 1;
  console.log(`FAIL - harness error\n       ${err?.stack ?? err}`);
} finally {
  for (const child of children) child.kill('SIGTERM');
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
