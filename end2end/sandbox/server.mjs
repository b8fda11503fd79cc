// Sandbox third-party service for end-to-end tests.
//
// One HTTP server (loopback only) that plays every "third party" the
// connections manager talks to:
//   * an OAuth 2.0 / OpenID Connect authorization server (the `oidc-provider`
//     package, not hand-written) with server-rendered login and consent pages;
//   * a bearer-token protected CRM API (/api/crm/...), validated in-process
//     against the provider's own token store;
//   * an API-key protected weather API (/api/weather);
//   * a basic-auth protected "Atlassian" API (/api/atlassian/myself);
//   * a Stripe-like payment gateway (/api/payments/charges, Bearer sk_test_sandbox);
//   * test hooks under /_sandbox/ (stats, failure injection, health).
//
// Start: `node sandbox/server.mjs` (or `npm run sandbox`) from end2end/.
// When listening it prints exactly one line to stdout:
//   SANDBOX_READY {"issuer":"http://127.0.0.1:PORT","port":PORT}
// Everything else (oidc-provider notices, request errors) goes to stderr.
//
// Environment variables (all optional):
//   SANDBOX_PORT               port to listen on (default 4010; 0 = pick a free port)
//   SANDBOX_HOST               interface to bind and issuer host (default 127.0.0.1)
//   SANDBOX_REDIRECT_URIS      comma-separated redirect URIs registered for the
//                              crm-connector and dropbox-like clients
//                              (default http://127.0.0.1:3000/oauth/callback).
//                              In addition any http://127.0.0.1:<port>/oauth/callback and
//                              http://localhost:<port>/oauth/callback is accepted.
//   SANDBOX_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 3600)
//   SANDBOX_REFRESH_TOKEN_TTL  refresh token lifetime in seconds (default 1209600 = 14 days)
//   SANDBOX_CRM_RECORDS        number of records per CRM module (default 250)
//   SANDBOX_API_KEYS           extra comma-separated keys accepted by /api/weather
//   SANDBOX_ATLASSIAN_TOKENS   extra comma-separated API tokens accepted by /api/atlassian/myself
//                              (sandbox-weather-key is always accepted)
//
// See sandbox/README.md for clients, accounts, endpoints and test hooks.

import http from 'node:http';
import crypto from 'node:crypto';

// oidc-provider prints notices with console.info (stdout). Keep stdout for the
// single SANDBOX_READY line so scripts can parse it.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

// Each start step is logged to stderr with the time since start, so a start that stalls
// (one on a CI machine never became ready within 60 s) says where.
const startedAt = performance.now();
const startStep = (what) => console.error(`sandbox: ${what} after ${Math.round(performance.now() - startedAt)} ms`);

const { default: Provider, errors } = await import('oidc-provider');
startStep('oidc-provider loaded');

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

function intEnv(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`sandbox: invalid ${name}=${JSON.stringify(raw)} (expected an integer >= ${min})`);
    process.exit(2);
  }
  return n;
}

function listEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const HOST = process.env.SANDBOX_HOST?.trim() || '127.0.0.1';
const PORT = intEnv('SANDBOX_PORT', 4010);
const REDIRECT_URIS = listEnv('SANDBOX_REDIRECT_URIS', ['http://127.0.0.1:3000/oauth/callback']);
const ACCESS_TOKEN_TTL = intEnv('SANDBOX_ACCESS_TOKEN_TTL', 3600, { min: 1 });
const REFRESH_TOKEN_TTL = intEnv('SANDBOX_REFRESH_TOKEN_TTL', 14 * 24 * 60 * 60, { min: 1 });
const CRM_RECORDS = intEnv('SANDBOX_CRM_RECORDS', 250);
const API_KEYS = new Set(['sandbox-weather-key', ...listEnv('SANDBOX_API_KEYS', [])]);

const RESOURCE_SCOPES = ['crm.deals.read', 'crm.contacts.read', 'crm.deals.write', 'files.read'];

const ACCOUNTS = {
  alice: { password: 'alice-password', name: 'Alice Sandbox', email: 'alice@sandbox.test' },
  bob: { password: 'bob-password', name: 'Bob Sandbox', email: 'bob@sandbox.test' },
};

const PAYMENTS_KEY = 'sk_test_sandbox';
const ATLASSIAN_USER = 'builder@sandbox.test';
const ATLASSIAN_TOKENS = ['atlassian-api-token', ...listEnv('SANDBOX_ATLASSIAN_TOKENS', [])];

const CLIENTS = [
  {
    client_id: 'crm-connector',
    client_secret: 'crm-connector-secret',
    client_name: 'CRM Connector',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'dropbox-like',
    client_secret: 'dropbox-like-secret',
    client_name: 'Dropbox-like Files',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'machine-client',
    client_secret: 'machine-client-secret',
    client_name: 'Machine Client',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// ---------------------------------------------------------------------------
// Stats and failure injection (test hooks)
// ---------------------------------------------------------------------------

function freshStats() {
  return {
    // every POST /token attempt, by grant_type (successful or not)
    token_requests: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
    // the subset of token_requests that failed (e.g. invalid_grant)
    token_errors: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
    // successful POSTs to the revocation endpoint
    revocations: 0,
    // every request under /api/ (whatever its outcome)
    api_calls: 0,
    // successful refresh answers held back by the slow-token failure mode
    held_token_responses: 0,
  };
}

let stats = freshStats();
const failure = { mode: 'off', remaining: null, delayMs: 30_000, skip: 0 };
let crmDrift = false;
// Webhook deliveries received at /_sandbox/webhooks/receive (newest last, at most 200), kept
// raw so a test can verify their signatures with its own Standard Webhooks library.
const webhooks = [];

function bump(bucket, key) {
  bucket[key] = (bucket[key] ?? 0) + 1;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function sendJson(res, status, body, headers = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(payload);
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'Cache-Control': 'no-store',
  });
  res.end(html);
}

async function readText(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(req, limit = 64 * 1024) {
  return new URLSearchParams(await readText(req, limit));
}

function safeEqual(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

function isLoopbackAddress(addr) {
  return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1'
    || (typeof addr === 'string' && (addr.startsWith('127.') || addr.startsWith('::ffff:127.')));
}

// Loopback callback pattern accepted in addition to the registered redirect URIs.
function isLoopbackCallback(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return url.protocol === 'http:'
    && (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
    && url.pathname === '/oauth/callback'
    && url.username === '' && url.password === ''
    && url.search === '' && url.hash === ''
    // reject anything that normalises differently (e.g. "http://127.0.0.1:80/...")
    && url.href === value;
}

// ---------------------------------------------------------------------------
// Deterministic CRM data
// ---------------------------------------------------------------------------

const STAGES = ['Qualification', 'Needs Analysis', 'Proposal', 'Negotiation', 'Closed Won', 'Closed Lost'];
const COMPANIES = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Tyrell'];
const FIRST_NAMES = ['Ada', 'Grace', 'Linus', 'Margaret', 'Dennis', 'Barbara', 'Ken', 'Frances', 'Alan', 'Radia'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Ritchie', 'Liskov', 'Thompson', 'Allen', 'Turing', 'Perlman'];
const BASE_TIME = Date.UTC(2024, 0, 1, 9, 0, 0);

function pad4(i) {
  return String(i).padStart(4, '0');
}

function updatedAt(i) {
  return new Date(BASE_TIME + i * 3_600_000).toISOString().replace('.000Z', 'Z');
}

function dealRecord(i) {
  return {
    id: `D-${pad4(i)}`,
    name: `Deal ${i} - ${COMPANIES[i % COMPANIES.length]}`,
    amount: 1000 + ((i * 7919) % 99000),
    stage: STAGES[i % STAGES.length],
    updated_at: updatedAt(i),
    // One record with what text formats must escape (a sync stores records as sent).
    ...(i === 7 ? { note: 'Quote "this", a backslash \\ and a tab\t' } : {}),
  };
}

function contactRecord(i) {
  const first = FIRST_NAMES[i % FIRST_NAMES.length];
  const last = LAST_NAMES[Math.floor(i / FIRST_NAMES.length) % LAST_NAMES.length];
  return {
    id: `C-${pad4(i)}`,
    first_name: first,
    last_name: last,
    email: `${first}.${last}.${i}@example.test`.toLowerCase(),
    updated_at: updatedAt(i),
  };
}

const CRM_MODULES = {
  Deals: { scope: 'crm.deals.read', record: dealRecord },
  Contacts: { scope: 'crm.contacts.read', record: contactRecord },
};

const FILES = Array.from({ length: 12 }, (_, k) => ({
  id: `F-${pad4(k + 1)}`,
  name: `report-${k + 1}.pdf`,
  size: 1024 * (k + 1) * 17,
  modified_at: updatedAt(k + 1),
}));

// ---------------------------------------------------------------------------
// HTML pages
// ---------------------------------------------------------------------------

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:40px}
main{max-width:420px;margin:0 auto;background:#fff;padding:24px 32px;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.2)}
label{display:block;margin-top:12px;font-weight:600}
input{display:block;width:100%;box-sizing:border-box;padding:8px;margin-top:4px;font-size:1em}
button{margin-top:16px;margin-right:8px;padding:8px 16px;font-size:1em}
.error{color:#b00020;font-weight:600}
ul{padding-left:20px}`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

function loginPage(uid, client, { error, username } = {}) {
  const errorHtml = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return page('Sign in to Sandbox CRM', `<h1>Sign in to Sandbox CRM</h1>
<p><strong>${escapeHtml(client?.clientName || client?.clientId || 'An application')}</strong> wants to access your Sandbox account.</p>
${errorHtml}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" required autofocus value="${escapeHtml(username)}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

function consentPage(uid, client, accountId, scopes) {
  const items = scopes.length
    ? scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('\n')
    : '<li>(no additional scopes)</li>';
  return page('Authorize access', `<h1>Authorize access</h1>
<p>Signed in as <strong>${escapeHtml(accountId)}</strong>.</p>
<p><strong>${escapeHtml(client?.clientName || client?.clientId)}</strong> (client <code>${escapeHtml(client?.clientId)}</code>) is requesting access to:</p>
<ul aria-label="Requested scopes">
${items}
</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit">Deny</button>
</form>`);
}

// ---------------------------------------------------------------------------
// Server bootstrap: listen first (port 0 support), then build the provider
// with the final issuer.
// ---------------------------------------------------------------------------

let handler = (req, res) => sendJson(res, 503, { error: 'starting' });
const server = http.createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 5_000;

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, () => {
    server.off('error', reject);
    resolve();
  });
});

const { port } = server.address();
startStep(`listening on port ${port}`);
const hostForUrl = HOST.includes(':') ? `[${HOST}]` : HOST;
const ISSUER = `http://${hostForUrl}:${port}`;
const API_RESOURCE = `${ISSUER}/api`;

function generateSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

const signingKey = generateSigningKey();
startStep('signing key generated');
const provider = new Provider(ISSUER, {
  clients: CLIENTS,
  jwks: { keys: [signingKey] },
  cookies: {
    keys: [crypto.randomBytes(32).toString('hex')],
    // Cookies are not port-scoped: prefix them so they cannot collide with the
    // app under test running on another port of the same loopback host.
    names: {
      session: 'sandbox_session',
      interaction: 'sandbox_interaction',
      resume: 'sandbox_interaction_resume',
    },
  },
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  async findAccount(ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: account.name,
          preferred_username: sub,
          email: account.email,
          email_verified: true,
        };
      },
    };
  },
  pkce: { required: () => true },
  // Issue a refresh token whenever the client may use the refresh_token grant,
  // not only when offline_access was requested with prompt=consent.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Every refresh rotates: the presented refresh token is consumed. Presenting a
  // consumed one is treated as replay and revokes the whole grant.
  rotateRefreshToken: true,
  // Tokens live independently of the provider's browser session.
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    ClientCredentials: ACCESS_TOKEN_TTL,
    AuthorizationCode: 120,
    IdToken: 3600,
    RefreshToken: REFRESH_TOKEN_TTL,
    Interaction: 3600,
    Session: 14 * 24 * 60 * 60,
    Grant: 14 * 24 * 60 * 60,
  },
  interactions: {
    url: async (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // Requests without a `resource` parameter get tokens for the sandbox API.
      defaultResource: async (ctx, client, oneOf) => {
        if (Array.isArray(oneOf) && oneOf.length) {
          return oneOf.includes(API_RESOURCE) ? API_RESOURCE : oneOf[0];
        }
        return API_RESOURCE;
      },
      // Access tokens are always issued for the API (even with `openid`).
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== API_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPES.join(' '),
          audience: API_RESOURCE,
          accessTokenFormat: 'opaque',
          accessTokenTTL: ACCESS_TOKEN_TTL,
        };
      },
    },
  },
  clientBasedCORS: () => false,
  async renderError(ctx, out) {
    ctx.type = 'html';
    const rows = Object.entries(out)
      .map(([k, v]) => `<p><strong>${escapeHtml(k)}</strong>: ${escapeHtml(v)}</p>`).join('\n');
    ctx.body = page('Sandbox error', `<h1>Something went wrong</h1>\n${rows}`);
  },
});

// Accept loopback callbacks on any port (tests run the app on random ports);
// everything else keeps oidc-provider's exact matching.
{
  const original = provider.Client.prototype.redirectUriAllowed;
  provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    if (original.call(this, value)) return true;
    return this.grantTypes.includes('authorization_code') && isLoopbackCallback(value);
  };
}

// Count token and revocation requests without touching the request body.
// The `slow-token` failure mode holds a successful refresh answer back *after* the provider
// has rotated (consumed) the presented refresh token: what a client that dies mid-refresh sees.
provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  if (route === 'token') {
    const gty = ctx.oidc.params?.grant_type || 'unknown';
    bump(stats.token_requests, gty);
    if (ctx.status >= 400) bump(stats.token_errors, gty);
    if (failure.mode === 'slow-token' && gty === 'refresh_token' && ctx.status === 200) {
      if (failure.remaining !== null) {
        failure.remaining -= 1;
        if (failure.remaining <= 0) {
          failure.mode = 'off';
          failure.remaining = null;
        }
      }
      stats.held_token_responses += 1;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, failure.delayMs);
        ctx.res.once('close', () => { clearTimeout(timer); resolve(); });
      });
    }
  } else if (route === 'revocation' && ctx.status === 200) {
    stats.revocations += 1;
  }
});

provider.on('server_error', (ctx, err) => console.error('sandbox: oidc-provider server_error', err));

const providerCallback = provider.callback();

// ---------------------------------------------------------------------------
// Interactions (login / consent)
// ---------------------------------------------------------------------------

function requestedScopes(details) {
  const scopes = [...(details.missingOIDCScope ?? [])];
  for (const list of Object.values(details.missingResourceScopes ?? {})) scopes.push(...list);
  return [...new Set(scopes)];
}

async function handleInteraction(req, res, url) {
  const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!match) return sendHtml(res, 404, page('Not found', '<h1>Not found</h1>'));
  const [, uid, action] = match;

  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (err) {
    return sendHtml(res, 400, page('Sandbox error', `<h1>Interaction expired</h1><p>${escapeHtml(err.message)}</p>`));
  }
  if (interaction.uid !== uid) {
    return sendHtml(res, 400, page('Sandbox error', '<h1>Interaction mismatch</h1>'));
  }
  const { prompt, params } = interaction;
  const client = await provider.Client.find(params.client_id);

  if (!action) {
    if (req.method !== 'GET') return sendHtml(res, 405, page('Method not allowed', '<h1>Method not allowed</h1>'));
    if (prompt.name === 'login') return sendHtml(res, 200, loginPage(uid, client));
    const accountId = interaction.session?.accountId;
    return sendHtml(res, 200, consentPage(uid, client, accountId, requestedScopes(prompt.details)));
  }

  if (req.method !== 'POST') return sendHtml(res, 405, page('Method not allowed', '<h1>Method not allowed</h1>'));

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (action === 'login') {
    if (prompt.name !== 'login') return sendHtml(res, 400, page('Sandbox error', '<h1>Unexpected login submission</h1>'));
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const account = Object.hasOwn(ACCOUNTS, username) ? ACCOUNTS[username] : undefined;
    if (!account || !safeEqual(password, account.password)) {
      return sendHtml(res, 200, loginPage(uid, client, { error: 'Invalid username or password', username }));
    }
    return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
  }

  // action === 'confirm'
  if (prompt.name !== 'consent') return sendHtml(res, 400, page('Sandbox error', '<h1>Unexpected consent submission</h1>'));
  await readForm(req);
  const { details } = prompt;
  const accountId = interaction.session.accountId;
  let { grantId } = interaction;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  if (details.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  grantId = await grant.save();
  const consent = {};
  if (!interaction.grantId) consent.grantId = grantId;
  return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// ---------------------------------------------------------------------------
// Resource APIs
// ---------------------------------------------------------------------------

function bearerError(res, status, error, description, extra = {}) {
  const parts = [`error="${error}"`, `error_description="${description}"`];
  if (extra.scope) parts.push(`scope="${extra.scope}"`);
  return sendJson(res, status, { error, error_description: description }, {
    'WWW-Authenticate': `Bearer ${parts.join(', ')}`,
  });
}

// Resolves the bearer token, or answers 401 and returns undefined.
async function authenticateBearer(req, res) {
  const header = req.headers.authorization ?? '';
  const m = header.match(/^Bearer\s+([A-Za-z0-9\-._~+/]+=*)\s*$/i);
  if (!m) {
    bearerError(res, 401, 'invalid_token', 'missing bearer token');
    return undefined;
  }
  const value = m[1];
  const token = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
  if (!token || token.isExpired) {
    bearerError(res, 401, 'invalid_token', 'token is invalid, expired or revoked');
    return undefined;
  }
  const aud = Array.isArray(token.aud) ? token.aud : [token.aud];
  if (!aud.includes(API_RESOURCE)) {
    bearerError(res, 401, 'invalid_token', 'token audience is not this API');
    return undefined;
  }
  return token;
}

function hasScope(token, scope) {
  return (token.scope ?? '').split(' ').includes(scope);
}

function positiveInt(raw, fallback) {
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) return NaN;
  return Number(raw);
}

async function handleCrm(req, res, url, moduleName) {
  const token = await authenticateBearer(req, res);
  if (!token) return undefined;

  if (moduleName === 'me') {
    if (!token.accountId) {
      return sendJson(res, 200, { account: null, client: token.clientId });
    }
    const account = ACCOUNTS[token.accountId];
    return sendJson(res, 200, {
      account: token.accountId,
      name: account?.name ?? token.accountId,
      email: account?.email ?? null,
    });
  }

  const mod = Object.hasOwn(CRM_MODULES, moduleName) ? CRM_MODULES[moduleName] : undefined;
  if (!mod) return sendJson(res, 404, { error: 'unknown_module' });
  if (!hasScope(token, mod.scope)) {
    return bearerError(res, 403, 'insufficient_scope', `token lacks ${mod.scope}`, { scope: mod.scope });
  }

  if (['500', 'garbage', 'slow'].includes(failure.mode) && failure.skip > 0) {
    failure.skip -= 1; // let this many requests through before failing (e.g. page 1 ok, page 2 fails)
  } else if (['500', 'garbage', 'slow'].includes(failure.mode)) {
    const mode = failure.mode;
    if (failure.remaining !== null) {
      failure.remaining -= 1;
      if (failure.remaining <= 0) {
        failure.mode = 'off';
        failure.remaining = null;
      }
    }
    if (mode === '500') {
      return sendJson(res, 500, { error: 'internal_error', message: 'sandbox failure injection' });
    }
    if (mode === 'garbage') {
      const body = '{"data":[{"id":"D-0001",,, this is not json <html>';
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      return res.end(body);
    }
    if (mode === 'slow') {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, failure.delayMs);
        res.once('close', () => { clearTimeout(timer); resolve(); });
      });
      if (res.destroyed || res.writableEnded) return undefined;
    }
  }

  const pageNo = positiveInt(url.searchParams.get('page'), 1);
  let perPage = positiveInt(url.searchParams.get('per_page'), 50);
  if (!(pageNo >= 1) || !(perPage >= 1)) {
    return sendJson(res, 400, { error: 'invalid_request', message: 'page and per_page must be positive integers' });
  }
  perPage = Math.min(perPage, 200);
  // Deals may be filtered by pipeline stage (?stage=Proposal; "All" or absent: every deal).
  // Record i has stage STAGES[i % STAGES.length], so a stage's records are every 6th one.
  const stage = moduleName === 'Deals' ? url.searchParams.get('stage') : null;
  let first = 1;
  let step = 1;
  if (stage && stage !== 'All') {
    const k = STAGES.indexOf(stage);
    if (k === -1) return sendJson(res, 400, { error: 'invalid_request', message: `unknown stage ${stage}` });
    first = k === 0 ? STAGES.length : k;
    step = STAGES.length;
  }
  const total = CRM_RECORDS >= first ? Math.floor((CRM_RECORDS - first) / step) + 1 : 0;
  const start = (pageNo - 1) * perPage; // 0-based position in the (filtered) list
  const end = Math.min(start + perPage, total);
  const data = [];
  // Paging drift (`/_sandbox/crm-drift`): every page after the first starts again with the
  // record that ended the page before, marked `"moved": true`, as when a record moved while the
  // client paged.
  if (crmDrift && pageNo > 1 && start > 0 && start <= total) data.push({ ...mod.record(first + (start - 1) * step), moved: true });
  for (let j = start; j < end; j += 1) data.push(mod.record(first + j * step));
  return sendJson(res, 200, {
    data,
    info: { page: pageNo, per_page: perPage, count: data.length, more_records: end < total },
  });
}

function weather(city) {
  const h = crypto.createHash('sha256').update(city.toLowerCase()).digest();
  const conditions = ['Clear', 'Clouds', 'Rain', 'Snow', 'Drizzle', 'Mist'];
  return {
    city,
    temperature_c: Math.round((((h[0] / 255) * 45) - 10) * 10) / 10,
    humidity: 20 + (h[1] % 80),
    wind_kph: Math.round((h[2] / 255) * 600) / 10,
    conditions: conditions[h[3] % conditions.length],
    observed_at: '2024-01-01T12:00:00Z',
  };
}

function handleWeather(req, res, url) {
  const key = req.headers['x-api-key'] ?? url.searchParams.get('appid');
  if (!key || ![...API_KEYS].some((k) => safeEqual(k, key))) {
    return sendJson(res, 401, { error: 'invalid_api_key', message: 'Invalid API key. Pass it in X-Api-Key or ?appid=' });
  }
  const city = url.searchParams.get('city');
  if (!city) return sendJson(res, 400, { error: 'invalid_request', message: 'city is required' });
  return sendJson(res, 200, weather(city));
}

// The demo payment gateway (Stripe-like): `Authorization: Bearer sk_test_sandbox`.
function handlePayments(req, res, url) {
  const m = (req.headers.authorization ?? '').match(/^Bearer\s+(\S+)\s*$/);
  if (!m || !safeEqual(m[1], PAYMENTS_KEY)) {
    return sendJson(res, 401, { error: { type: 'invalid_request_error', message: 'Invalid API key provided.' } });
  }
  const limit = Math.min(positiveInt(url.searchParams.get('limit'), 10), 100);
  if (!(limit >= 1)) return sendJson(res, 400, { error: { type: 'invalid_request_error', message: 'limit must be a positive integer' } });
  const data = Array.from({ length: limit }, (_, i) => ({
    id: `ch_${String(i + 1).padStart(4, '0')}`,
    amount: 1500 + i * 250,
    currency: 'usd',
    status: i % 5 === 4 ? 'refunded' : 'succeeded',
    description: `Service visit #${1000 + i}`,
  }));
  return sendJson(res, 200, { object: 'list', data, has_more: true });
}

function handleAtlassian(req, res) {
  const header = req.headers.authorization ?? '';
  const m = header.match(/^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i);
  let ok = false;
  if (m) {
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i !== -1) {
      ok = safeEqual(decoded.slice(0, i), ATLASSIAN_USER)
        && ATLASSIAN_TOKENS.some((t) => safeEqual(decoded.slice(i + 1), t));
    }
  }
  if (!ok) {
    return sendJson(res, 401, { error: 'unauthorized', message: 'Basic authentication failed' }, {
      'WWW-Authenticate': 'Basic realm="Sandbox Atlassian", charset="UTF-8"',
    });
  }
  return sendJson(res, 200, {
    accountId: 'sandbox-builder',
    emailAddress: ATLASSIAN_USER,
    displayName: 'Sandbox Builder',
    active: true,
    timeZone: 'UTC',
  });
}

async function handleFiles(req, res) {
  const token = await authenticateBearer(req, res);
  if (!token) return undefined;
  if (!hasScope(token, 'files.read')) {
    return bearerError(res, 403, 'insufficient_scope', 'token lacks files.read', { scope: 'files.read' });
  }
  return sendJson(res, 200, { entries: FILES, has_more: false });
}

// A redirect for testing clients that follow (or refuse) hops: `to` is the Location (any URL;
// this server is loopback-only), `status` one of 301 302 303 307 308 (default 302); `loop=1`
// redirects to itself forever. No authentication.
function handleRedirect(req, res, url) {
  const status = Number(url.searchParams.get('status') ?? 302);
  if (![301, 302, 303, 307, 308].includes(status)) {
    return sendJson(res, 400, { error: 'invalid_request', message: 'status must be 301, 302, 303, 307 or 308' });
  }
  const to = url.searchParams.get('loop') === '1' ? `${url.pathname}${url.search}` : url.searchParams.get('to');
  if (!to) return sendJson(res, 400, { error: 'invalid_request', message: 'to is required' });
  res.writeHead(status, { Location: to, 'Content-Length': 0 });
  return res.end();
}

async function handleApi(req, res, url) {
  stats.api_calls += 1;
  if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET' });
  const { pathname } = url;
  const crm = pathname.match(/^\/api\/crm\/([^/]+)\/?$/);
  if (crm) return handleCrm(req, res, url, decodeURIComponent(crm[1]));
  if (pathname === '/api/weather') return handleWeather(req, res, url);
  if (pathname === '/api/atlassian/myself') return handleAtlassian(req, res);
  if (pathname === '/api/payments/charges') return handlePayments(req, res, url);
  if (pathname === '/api/files') return handleFiles(req, res);
  if (pathname === '/api/redirect') return handleRedirect(req, res, url);
  return sendJson(res, 404, { error: 'not_found' });
}

// ---------------------------------------------------------------------------
// Test hooks
// ---------------------------------------------------------------------------

async function handleHooks(req, res, url) {
  if (!isLoopbackAddress(req.socket.remoteAddress)) return sendJson(res, 403, { error: 'loopback_only' });
  const { pathname } = url;
  if (pathname === '/_sandbox/healthz' && req.method === 'GET') {
    return sendJson(res, 200, { status: 'ok', issuer: ISSUER });
  }
  if (pathname === '/_sandbox/stats' && req.method === 'GET') {
    return sendJson(res, 200, { ...stats, failure_mode: failure.mode });
  }
  if (pathname === '/_sandbox/reset-stats' && req.method === 'POST') {
    stats = freshStats();
    return sendJson(res, 200, stats);
  }
  if (pathname === '/_sandbox/webhooks/receive' && req.method === 'POST') {
    const body = await readText(req, 256 * 1024);
    const headers = {};
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type']) {
      if (req.headers[name] !== undefined) headers[name] = req.headers[name];
    }
    webhooks.push({ headers, body });
    if (webhooks.length > 200) webhooks.shift();
    res.writeHead(204);
    return res.end();
  }
  if (pathname === '/_sandbox/webhooks' && req.method === 'GET') {
    return sendJson(res, 200, webhooks);
  }
  if (pathname === '/_sandbox/crm-drift' && req.method === 'POST') {
    crmDrift = url.searchParams.get('on') === '1';
    return sendJson(res, 200, { drift: crmDrift });
  }
  if (pathname === '/_sandbox/fail' && req.method === 'POST') {
    const mode = url.searchParams.get('mode');
    if (!['500', 'garbage', 'slow', 'slow-token', 'off'].includes(mode)) {
      return sendJson(res, 400, {
        error: 'invalid_request',
        message: 'mode must be 500, garbage, slow, slow-token or off',
      });
    }
    const times = positiveInt(url.searchParams.get('times'), null);
    const delayMs = positiveInt(url.searchParams.get('delay_ms'), 30_000);
    if (Number.isNaN(times) || Number.isNaN(delayMs) || times === 0) {
      return sendJson(res, 400, { error: 'invalid_request', message: 'times and delay_ms must be positive integers' });
    }
    const skip = positiveInt(url.searchParams.get('skip'), 0);
    if (Number.isNaN(skip)) {
      return sendJson(res, 400, { error: 'invalid_request', message: 'skip must be a non-negative integer' });
    }
    failure.mode = mode;
    failure.skip = mode === 'off' ? 0 : skip;
    failure.remaining = mode === 'off' ? null : times;
    failure.delayMs = delayMs;
    return sendJson(res, 200, { mode: failure.mode, times: failure.remaining, delay_ms: failure.delayMs });
  }
  return sendJson(res, 404, { error: 'not_found' });
}

// ---------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------

handler = async (req, res) => {
  let url;
  try {
    url = new URL(req.url, ISSUER);
  } catch {
    return sendJson(res, 400, { error: 'bad_request' });
  }
  try {
    if (url.pathname.startsWith('/api/')) return await handleApi(req, res, url);
    if (url.pathname.startsWith('/_sandbox/')) return await handleHooks(req, res, url);
    if (url.pathname.startsWith('/interaction/')) return await handleInteraction(req, res, url);
    return providerCallback(req, res);
  } catch (err) {
    console.error('sandbox: request failed', req.method, req.url, err);
    if (!res.headersSent) return sendJson(res, 500, { error: 'server_error' });
    return res.destroy();
  }
};

function shutdown(signal) {
  console.error(`sandbox: received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

startStep('ready');
process.stdout.write(`SANDBOX_READY ${JSON.stringify({ issuer: ISSUER, port })}\n`);
