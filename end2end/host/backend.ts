/*
 * A builder's own product ("the host") that embeds the connections panel for its end users,
 * who never sign in to the platform themselves.
 *
 * Its backend holds a workspace API key (scope `connect_sessions`). For each page view it asks
 * the platform, server to server, for a short-lived single-use connect session for the end user
 * (POST {platform}/v1/connect-sessions), then serves a page with the one-line snippet carrying the
 * session token. The page lists the events the panel posts ("Panel events"), trusting only
 * messages from the platform's origin. If the platform refuses, the page shows the problem's
 * title and detail in an alert.
 *
 * Node's standard library only (node:http, and the built-in fetch for the call to the platform).
 *
 * Use:
 *   - from a Playwright spec:
 *       const host = await startHost({ platform: 'http://127.0.0.1:3000', apiKey: secret, app: 'sales_hub' });
 *       await page.goto(`${host.origin}/?user=ext-42&name=Ada%20Host`);
 *       ...
 *       await host.close();
 *     (the host listens on 127.0.0.1 but is addressed as http://localhost:<port>: another site
 *     than a platform at 127.0.0.1; add that origin to the application's embed allowlist);
 *   - on its own (Node >= 22.6, which can strip the types):
 *       PLATFORM=http://127.0.0.1:3000 API_KEY=cmk_... APP=sales_hub PORT=4020 \
 *         node --experimental-strip-types end2end/host/backend.ts
 *     then open http://localhost:4020/ (a form asks for the end user) or
 *     http://localhost:4020/?user=ext-42&name=Ada%20Host.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface HostOptions {
  /** The platform's origin, e.g. http://127.0.0.1:3000 (a trailing slash or path is ignored). */
  platform: string;
  /** The secret of a workspace API key with the `connect_sessions` scope. */
  apiKey: string;
  /** The application whose panel is embedded, e.g. sales_hub. */
  app: string;
  /** The port to listen on; by default any free one. */
  port?: number;
}

export interface Host {
  /** http://localhost:<port> */
  origin: string;
  close(): Promise<void>;
}

/** How long a connect session token may wait to be exchanged by the frame. */
const SESSION_LIFETIME_SECONDS = 600;

interface ConnectSession {
  token: string;
  expires_at: string;
  embed_url: string;
}

interface Problem {
  title: string;
  detail?: string;
  status?: number;
}

interface EndUser {
  id: string;
  displayName: string;
  email?: string;
}

export async function startHost(opts: HostOptions): Promise<Host> {
  const platform = new URL(opts.platform).origin;
  const server = createServer((req, res) => {
    handle(req, res, platform, opts).catch((err: unknown) => {
      if (!res.headersSent) {
        send(res, 500, page('Host product', alert({ title: 'The host failed', detail: String(err) })));
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const origin = `http://localhost:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, platform: string, opts: HostOptions) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== '/') {
    send(res, 404, page('Not found', '<p>Not found.</p>'));
    return;
  }
  if (req.method !== 'GET') {
    res.setHeader('allow', 'GET');
    send(res, 405, page('Method not allowed', '<p>Method not allowed.</p>'));
    return;
  }
  const id = (url.searchParams.get('user') ?? '').trim();
  if (!id) {
    send(res, 200, page('Host product', chooseUserForm()));
    return;
  }
  const user: EndUser = {
    id,
    displayName: (url.searchParams.get('name') ?? '').trim() || id,
    email: (url.searchParams.get('email') ?? '').trim() || undefined,
  };
  const result = await createConnectSession(platform, opts, user);
  if ('problem' in result) {
    send(res, 502, page('Host product', signedInAs(user) + alert(result.problem)));
    return;
  }
  send(res, 200, page('Host product', signedInAs(user) + panel(platform, opts.app, result.session.token)));
}

/** The server-to-server call: a connect session for one end user (role `user`). */
async function createConnectSession(
  platform: string,
  opts: HostOptions,
  user: EndUser,
): Promise<{ session: ConnectSession } | { problem: Problem }> {
  const endUser: Record<string, string> = { id: user.id, display_name: user.displayName, role: 'user' };
  if (user.email) endUser.email = user.email;
  let response: Response;
  try {
    response = await fetch(`${platform}/v1/connect-sessions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${opts.apiKey}`,
        'content-type': 'application/json',
        accept: 'application/json, application/problem+json',
      },
      body: JSON.stringify({ end_user: endUser, application: opts.app, lifetime_seconds: SESSION_LIFETIME_SECONDS }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    return { problem: { title: 'The connections platform could not be reached', detail: String(err) } };
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.status === 201 && isSession(body)) return { session: body };
  if (isProblem(body)) return { problem: { title: body.title, detail: body.detail, status: response.status } };
  return {
    problem: {
      title: `The connections platform answered ${response.status}`,
      detail: text.slice(0, 300) || undefined,
      status: response.status,
    },
  };
}

function isSession(v: unknown): v is ConnectSession {
  const o = v as Partial<ConnectSession> | null;
  return typeof o === 'object' && o !== null && typeof o.token === 'string' && o.token.length > 0;
}

function isProblem(v: unknown): v is Problem {
  const o = v as Partial<Problem> | null;
  return typeof o === 'object' && o !== null && typeof o.title === 'string';
}

function send(res: ServerResponse, status: number, html: string) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    // The page carries a single-use token: never cached, never reused.
    'cache-control': 'no-store',
  });
  res.end(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A JSON value safe to put inside an inline <script>. */
function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
.alert{border:1px solid #c33;background:#fff4f4;padding:.75rem 1rem;border-radius:6px}
#events li{font-family:monospace;margin:.2rem 0}
</style>
</head>
<body>
<h1>Host product</h1>
${body}
</body>
</html>
`;
}

function chooseUserForm(): string {
  return `<form method="get" action="/" aria-label="Open as an end user">
<p><label>End user id <input name="user" required></label></p>
<p><label>Display name <input name="name"></label></p>
<p><label>Email <input name="email" type="email"></label></p>
<p><button type="submit">Open the connections panel</button></p>
</form>`;
}

function signedInAs(user: EndUser): string {
  return `<p>Signed in to the host as <strong>${escapeHtml(user.displayName)}</strong> (${escapeHtml(user.id)}).</p>\n`;
}

function alert(problem: Problem): string {
  return `<div class="alert" role="alert">
<p><strong>${escapeHtml(problem.title)}</strong></p>
${problem.detail ? `<p>${escapeHtml(problem.detail)}</p>` : ''}
</div>`;
}

/** The listener (registered before the frame exists), the snippet with the token, the events list. */
function panel(platform: string, app: string, token: string): string {
  return `<script>
(function () {
  var platform = ${jsonForScript(platform)};
  function show(m) {
    var li = document.createElement('li');
    li.textContent = [m.type, m.app, m.connection, m.environment, m.at].join(' ');
    document.getElementById('events').appendChild(li);
  }
  window.addEventListener('message', function (event) {
    if (event.origin !== platform) return; // only the platform's panel
    var m = event.data;
    if (!m || typeof m.type !== 'string' || m.type.indexOf('connections.') !== 0) return;
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', function () { show(m); });
    } else {
      show(m);
    }
  });
})();
</script>
<h2>Connections</h2>
<div id="panel">
<script src="${escapeHtml(platform)}/embed.js" data-app="${escapeHtml(app)}" data-session-token="${escapeHtml(token)}" data-height="520px"></script>
</div>
<h2>Panel events</h2>
<ul id="events" aria-label="Panel events"></ul>
`;
}

// Run on its own: see the comment at the top.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const platform = process.env.PLATFORM ?? 'http://127.0.0.1:3000';
  const apiKey = process.env.API_KEY;
  if (!apiKey) {
    console.error('Set API_KEY to the secret of a workspace API key with the connect_sessions scope.');
    process.exit(2);
  }
  startHost({ platform, apiKey, app: process.env.APP ?? 'sales_hub', port: Number(process.env.PORT) || 0 }).then((host) => {
    console.log(`Host product at ${host.origin}/ (embedding ${platform}); add that origin to the embed allowlist.`);
  });
}
