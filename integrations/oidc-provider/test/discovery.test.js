// A relying party that knows only keymesh's address finds its keys: npm
// jose reads the discovery metadata, fetches the JWKS it names
// (createRemoteJWKSet) and verifies a token with the metadata's issuer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { startNode, tempDir } from './support/processes.js';

let tmp;
let node;

before(async () => {
  tmp = tempDir();
  node = await startNode(tmp.dir); // keys.issuer not set
});

after(async () => {
  await node?.proc.stop('SIGKILL');
  tmp?.remove();
});

async function issue(body) {
  const res = await fetch(`${node.url}/api/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${node.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201);
  return (await res.json()).token;
}

test('jose finds the keys through the discovery metadata and checks the issuer', async () => {
  const res = await fetch(`${node.url}/.well-known/openid-configuration`);
  assert.equal(res.status, 200);
  const meta = await res.json();
  assert.equal(meta.issuer, 'urn:keymesh:keymesh');
  assert.equal(meta.jwks_uri, `${node.url}/.well-known/jwks.json`);
  const oauth = await (await fetch(`${node.url}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(oauth, meta);

  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  const token = await issue({ sub: 'rp-user', aud: 'rp' });
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer: meta.issuer,
    audience: 'rp',
    algorithms: meta.id_token_signing_alg_values_supported,
    requiredClaims: ['iss', 'exp', 'iat'],
  });
  assert.equal(payload.sub, 'rp-user');
  assert.equal(protectedHeader.alg, 'ES256');
  // The issuer check is real: another issuer is refused.
  await assert.rejects(
    jwtVerify(token, jwks, { issuer: 'urn:keymesh:someone-else', audience: 'rp' }),
    { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' },
  );
});
