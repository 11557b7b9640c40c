// An independent, OpenID Certified provider for the portal's login tests: panva's oidc-provider, configured the
// standard way for the Swedish OpenID Connect profile (its scopes and claims, loa2/loa3 acr values, claims released
// only for requested scopes, scope claims in userinfo, RFC 9207 `iss`, RP-initiated logout).
//
//   node provider.mjs config.json
//
// config.json (written by the test): {port, issuer, clients: [...client metadata], accounts: {id: {claims}},
// keys: [private JWKs, the first signs], cookieKeys: [...]}. The login and consent pages are ours (small, below),
// built on the provider's interaction API; they let the test choose the account and the assurance level.
// POST /__test/keys {keys: [...]} replaces the signing keys (rotation, withdrawal) without losing sessions: the
// provider's in-memory adapter is shared by every Provider instance of the process.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const LOA = 'http://id.elegnamnden.se/loa/1.0/';
const PNR = 'https://id.oidc.se/claim/personalIdentityNumber';
const COORD = 'https://id.oidc.se/claim/coordinationNumber';

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function build(keys) {
  return new Provider(config.issuer, {
    clients: config.clients,
    jwks: { keys },
    cookies: { keys: config.cookieKeys },
    acrValues: [`${LOA}loa2`, `${LOA}loa3`],
    claims: {
      openid: ['sub'],
      acr: null,
      'https://id.oidc.se/scope/naturalPersonNumber': [PNR, COORD],
      'https://id.oidc.se/scope/naturalPersonInfo': ['given_name', 'family_name', 'middle_name', 'name', 'birthdate'],
    },
    scopes: ['openid'],
    // OpenID Connect Core 5.4: claims requested by scope go to userinfo when an access token is issued.
    conformIdTokenClaims: true,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const account = config.accounts[id];
      if (!account) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...account.claims }; } };
    },
  });
}

let provider = build(config.keys);

function page(res, title, body) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>${escape(title)}</title></head>` +
    `<body><main><h1>${escape(title)}</h1>${body}</main></body></html>`);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(req) {
  return new URLSearchParams(await readBody(req));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (req.method === 'GET' && prompt.name === 'login') {
    const accounts = Object.keys(config.accounts)
      .map((id) => `<option value="${escape(id)}">${escape(id)}</option>`).join('');
    return page(res, 'Logga in (testleverantör)',
      `<form method="post" action="/interaction/${escape(uid)}/login">` +
      `<label for="account">Konto</label><select id="account" name="account">${accounts}</select>` +
      `<label for="acr">Tillitsnivå</label><select id="acr" name="acr">` +
      '<option value="loa3">loa3</option><option value="loa2">loa2</option></select>' +
      '<button type="submit">Logga in</button></form>');
  }
  if (req.method === 'GET' && prompt.name === 'consent') {
    return page(res, 'Godkänn',
      `<p>${escape(params.client_id)} vill ha: ${escape(params.scope)}</p>` +
      `<form method="post" action="/interaction/${escape(uid)}/consent"><button type="submit">Godkänn</button></form>`);
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const account = form.get('account');
    if (!config.accounts[account]) return page(res, 'Okänt konto', '');
    const result = { login: { accountId: account, acr: `${LOA}${form.get('acr') === 'loa2' ? 'loa2' : 'loa3'}` } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'consent' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  res.writeHead(400, { 'content-type': 'text/plain' });
  return res.end(`unexpected ${req.method} for prompt ${prompt.name}`);
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'POST' && url.pathname === '/__test/keys') {
      const body = JSON.parse(await readBody(req));
      provider = build(body.keys);
      res.writeHead(204);
      return res.end();
    }
    const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|consent))?$/);
    if (match) return await interaction(req, res, match[1], match[2]);
    return provider.callback()(req, res);
  } catch (err) {
    console.error(`provider error: ${err.name}: ${err.message}`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' });
    }
    return res.end(`${err.name}`);
  }
});

server.listen(config.port, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${config.port} as ${config.issuer}`);
});
