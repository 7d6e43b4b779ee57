// A real OAuth 2.0 authorization server (oidc-provider) for egret's integration tests,
// plus one protected resource that accepts only this server's tokens.
//
// Environment:
//   CERT, KEY      PEM files for HTTPS (the test CA issues them for auth.test.local and
//                  api.test.local, which egret's `upstream.resolve` maps to 127.0.0.1)
//   CLIENTS        JSON array of oidc-provider client metadata
//   ACCESS_TTL     access-token lifetime in seconds (default 60)
//   ISSUER_HOST    the issuer's host name (default auth.test.local)
// Prints one JSON line {"port": N} on stdout once it listens on 127.0.0.1.
//
// Test-only routes (never part of a real server): GET /test/stats,
// POST /test/token-mode?mode=ok|down|slow, POST /test/revoke-grants,
// POST /test/revoke-access-tokens, POST /test/withhold-scope?scope=S (consent then grants
// every scope asked for but S: a vendor that grants fewer scopes than asked).

import https from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';

// oidc-provider 9 warns at every start about two things that are right for this server:
// "Unsupported runtime. Use Node.js v22.x LTS" on any Node.js before 22 LTS (CI runs
// Debian's Node 20, on which every test against this server passes), and the in-memory
// adapter (a test server's state should die with it). Once per server start, 39 times
// a run, they said nothing about the tests; those two are dropped and every other line
// still reaches the test's output.
const warn = console.warn;
const expected = ['Unsupported runtime', 'development-only in-memory adapter'];
console.warn = (...args) => {
  if (!expected.some((text) => String(args[0]).includes(text))) warn(...args);
};
const { default: Provider } = await import('oidc-provider');

const ACCESS_TTL = Number(process.env.ACCESS_TTL ?? 60);
const ISSUER_HOST = process.env.ISSUER_HOST ?? 'auth.test.local';
const RESOURCE = 'https://api.test.local';
const RESOURCE_SCOPES = 'read write';

const stats = { authorization_code: 0, refresh_token: 0, refresh_token_refused: 0, client_credentials: 0, revocations: 0, resource_ok: 0, resource_refused: 0 };
let tokenMode = 'ok';
let withheld = null;
const grants = new Set();
const accessTokens = new Set();

// A signing key of this server's own (per start) for ID tokens: without one oidc-provider
// signs with its built-in development keys and warns about it at every start. P-256:
// made in a millisecond (an RSA key costs half a second of CPU per start).
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid: 'egret-test' };

const server = https.createServer({
  cert: fs.readFileSync(process.env.CERT),
  key: fs.readFileSync(process.env.KEY),
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`https://${ISSUER_HOST}:${port}`, {
    clients: JSON.parse(process.env.CLIENTS ?? '[]'),
    jwks: { keys: [signingKey] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: ['egret-test-cookie-key'] },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    scopes: ['openid', 'offline_access', 'email', 'read', 'write'],
    claims: { openid: ['sub'], email: ['email'] },
    ttl: {
      AccessToken: ACCESS_TTL,
      ClientCredentials: ACCESS_TTL,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      IdToken: 3600,
      Session: 3600,
      Grant: 24 * 3600,
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // The email only from userinfo, as vendors whose ID tokens carry a bare subject do.
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async (use) => (use === 'userinfo' ? { sub: id, email: `${id}@example.test` } : { sub: id }),
    }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        // A sign-in that asked for `email` gets a token for the userinfo endpoint (as
        // Google's and Microsoft's are); the others get one for the API.
        useGrantedResource: async (ctx, model) => !String(model?.scope ?? '').split(' ').includes('email'),
        getResourceServerInfo: async () => ({
          scope: RESOURCE_SCOPES,
          accessTokenFormat: 'opaque',
          accessTokenTTL: ACCESS_TTL,
        }),
      },
    },
  });

  provider.on('grant.success', (ctx) => {
    const type = ctx.oidc.params.grant_type;
    if (type in stats) stats[type] += 1;
  });
  provider.on('grant.error', (ctx, err) => {
    // A refresh token used twice (or after its grant was revoked) is refused here.
    if (ctx.oidc?.params?.grant_type === 'refresh_token') stats.refresh_token_refused += 1;
    console.error(`grant.error: ${err.message}: ${err.error_detail ?? ''}`);
  });
  provider.on('server_error', (ctx, err) => console.error(`server_error: ${err.stack}`));
  provider.on('grant.saved', (grant) => grants.add(grant.jti));
  provider.on('access_token.saved', (token) => accessTokens.add(token.jti));

  provider.use(async (ctx, next) => {
    const path = ctx.path;
    if (path === '/test/stats') {
      ctx.body = stats;
      return;
    }
    if (path === '/test/token-mode' && ctx.method === 'POST') {
      tokenMode = ctx.query.mode ?? 'ok';
      ctx.body = { mode: tokenMode };
      return;
    }
    if (path === '/test/withhold-scope' && ctx.method === 'POST') {
      withheld = ctx.query.scope ?? null;
      ctx.body = { withheld };
      return;
    }
    if (path === '/test/revoke-grants' && ctx.method === 'POST') {
      let n = 0;
      for (const id of grants) {
        const grant = await provider.Grant.find(id);
        if (grant) { await grant.destroy(); n += 1; }
      }
      grants.clear();
      ctx.body = { revoked: n };
      return;
    }
    if (path === '/test/revoke-access-tokens' && ctx.method === 'POST') {
      let n = 0;
      for (const id of accessTokens) {
        const token = await provider.AccessToken.find(id);
        if (token) { await token.destroy(); n += 1; }
      }
      accessTokens.clear();
      ctx.body = { revoked: n };
      return;
    }
    if (path === '/token' && tokenMode === 'down') {
      ctx.status = 503;
      ctx.body = 'token endpoint down for maintenance';
      return;
    }
    if (path === '/token' && tokenMode === 'slow') {
      await new Promise((r) => setTimeout(r, 30000));
      // A caller that hung up (timed out, or was killed) never gets its grant processed:
      // the request is as if it had not arrived.
      if (ctx.req.socket.destroyed) return;
    }
    if (path === '/resource') {
      await resource(ctx);
      return;
    }
    // A buggy vendor endpoint: 401 to every token, valid or not.
    if (path === '/refuse-all') {
      stats.resource_refused += 1;
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    if (path.startsWith('/interaction/')) {
      await interaction(ctx);
      return;
    }
    await next();
    if (path === '/token/revocation' && ctx.status === 200) stats.revocations += 1;
  });

  // The protected API: only live access tokens of this server, for its resource.
  async function resource(ctx) {
    const auth = ctx.get('authorization');
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const found = token
      ? (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token))
      : undefined;
    if (!found || found.isExpired || found.aud !== RESOURCE) {
      stats.resource_refused += 1;
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    stats.resource_ok += 1;
    ctx.body = { sub: found.accountId ?? null, client_id: found.clientId, scope: found.scope };
  }

  // A minimal sign-in: a login form, then a consent form; "deny" refuses the
  // authorization. Each page's first form is what a user would submit.
  async function interaction(ctx) {
    const [, , uid, action] = ctx.path.split('/');
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
    const { prompt, params } = details;
    if (ctx.method === 'GET') {
      const [step, label] = prompt.name === 'login' ? ['login', 'Sign in'] : ['consent', 'Allow'];
      ctx.type = 'html';
      ctx.body = `<!doctype html><p>${params.client_id} asks for: ${params.scope ?? ''}</p>
<form method="post" action="/interaction/${uid}/${step}"><input name="login" value="alice"><button>${label}</button></form>
<form method="post" action="/interaction/${uid}/deny"><button>Deny</button></form>`;
      return;
    }
    let result;
    if (action === 'deny') {
      result = { error: 'access_denied', error_description: 'the user denied the request' };
    } else if (action === 'login') {
      const body = new URLSearchParams(await readBody(ctx.req));
      result = { login: { accountId: body.get('login') || 'alice' } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        const granted = scopes.filter((s) => s !== withheld);
        if (granted.length > 0) grant.addResourceScope(indicator, granted.join(' '));
        if (granted.length < scopes.length) grant.rejectResourceScope(indicator, withheld);
      }
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: action === 'consent' });
    ctx.respond = false;
  }

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

// The test harness closes stdin to stop the server; die with it either way.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
