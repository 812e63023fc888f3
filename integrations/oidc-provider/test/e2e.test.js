// The proof: node oidc-provider, three replicas on a 3-node keymesh cluster
// (mutual TLS, replication factor 2), behind nginx round-robin with no
// affinity, driven by openid-client as the relying party. Every request
// of a flow lands on the next replica; no Redis, no sticky sessions.
import assert from 'node:assert/strict';
import {
  createHmac, createPublicKey, generateKeyPairSync, randomUUID, sign, verify,
} from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import * as oidc from 'openid-client';

import { Browser } from './support/browser.js';
import { deploy } from './support/deployment.js';
import { pkceRequest, redeemCode } from './support/rp.js';

let d;
let rp;

before(async () => {
  d = await deploy();
  rp = await oidc.discovery(new URL(d.issuer), 'rp1', undefined, oidc.ClientSecretBasic('rp1-secret'), {
    execute: [oidc.allowInsecureRequests],
  });
});

after(async () => { await d?.stop(); });

/** A code flow with PKCE through login and consent; the browser and tokens. */
async function codeFlow({ par = false, dpop, login = 'alice' } = {}) {
  const browser = new Browser(d.issuer);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const params = {
    redirect_uri: d.redirectUri,
    scope: 'openid offline_access',
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  };
  const url = par ? await oidc.buildAuthorizationUrlWithPAR(rp, params) : oidc.buildAuthorizationUrl(rp, params);
  const callback = await browser.authorize(url.href, d.redirectUri, { login });
  const tokens = await oidc.authorizationCodeGrant(rp, new URL(callback), {
    pkceCodeVerifier: verifier, expectedState: state,
  }, undefined, dpop ? { DPoP: dpop } : undefined);
  return { browser, tokens, verifier, callback };
}

/** Every request went to the next replica: all three, never one twice in a row. */
function assertRoundRobin(replicas) {
  assert.ok(replicas.length >= 6, `only ${replicas.length} requests`);
  assert.deepEqual(new Set(replicas), new Set(['op-1', 'op-2', 'op-3']));
  for (let i = 1; i < replicas.length; i += 1) {
    assert.notEqual(replicas[i], replicas[i - 1], `requests ${i - 1} and ${i} on one replica: ${replicas}`);
  }
}

describe('flows through three replicas', () => {
  test('authorization code with PKCE through login and consent', async () => {
    const { browser, tokens } = await codeFlow();
    assertRoundRobin(browser.replicas);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token);
    const claims = tokens.claims();
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.iss, d.issuer);
    assert.ok(claims.sid, 'the ID token carries the sid (back-channel logout)');
    const info = await oidc.fetchUserInfo(rp, tokens.access_token, 'alice');
    assert.equal(info.sub, 'alice');
  });

  test('the same flow starting with a pushed authorization request', async () => {
    const { browser, tokens } = await codeFlow({ par: true });
    assertRoundRobin(browser.replicas);
    assert.equal(tokens.claims().sub, 'alice');
  });

  test('refresh tokens rotate; reusing a rotated one revokes the grant', async () => {
    const { tokens } = await codeFlow();
    const first = tokens.refresh_token;
    const second = await oidc.refreshTokenGrant(rp, first);
    assert.ok(second.refresh_token && second.refresh_token !== first);
    const third = await oidc.refreshTokenGrant(rp, second.refresh_token);
    assert.ok(third.access_token);
    await assert.rejects(oidc.refreshTokenGrant(rp, first), (err) => err.error === 'invalid_grant');
    // The whole grant ended: its newest refresh token and access token too.
    await assert.rejects(oidc.refreshTokenGrant(rp, third.refresh_token), (err) => err.error === 'invalid_grant');
    const introspected = await oidc.tokenIntrospection(rp, third.access_token).catch((err) => err);
    assert.ok(introspected instanceof Error || introspected.active === false);
  });

  test('client credentials', async () => {
    const tokens = await oidc.clientCredentialsGrant(rp, { scope: 'openid' });
    assert.ok(tokens.access_token);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  });

  test('DPoP-bound tokens with server nonces any replica accepts', async () => {
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair());
    const { tokens } = await codeFlow({ dpop });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    // Each refresh lands on another replica, with the nonce the last one
    // gave: all accept each other's.
    let current = tokens;
    for (let i = 0; i < 4; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      current = await oidc.refreshTokenGrant(rp, current.refresh_token, undefined, { DPoP: dpop });
      assert.equal(current.token_type.toLowerCase(), 'dpop');
    }
  });

  test('an authorization code redeemed at two replicas at once yields tokens once', async () => {
    const browser = new Browser(d.issuer);
    const { url, verifier } = await pkceRequest(rp, d.redirectUri);
    const code = new URL(await browser.authorize(url, d.redirectUri)).searchParams.get('code');
    const redeem = (i) => redeemCode(`${d.opUrl(i)}/token`, { code, redirectUri: d.redirectUri, verifier });
    const answers = await Promise.all([redeem(1), redeem(2)]);
    const granted = answers.filter((a) => a.status === 200);
    assert.equal(granted.length, 1, JSON.stringify(answers));
    const refused = answers.find((a) => a.status !== 200);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_grant');
  });
});

/** Verifies a logout token (ES256, keys from the OP's jwks_uri). */
async function verifyLogoutToken(token) {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const jwks = await (await fetch(rp.serverMetadata().jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `the OP's JWKS has the logout token's key ${header.kid}`);
  assert.equal(header.alg, 'ES256');
  assert.equal(header.typ, 'logout+jwt');
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), {
    key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363',
  }, Buffer.from(s, 'base64url'));
  assert.ok(ok, 'the logout token signature verifies');
  return JSON.parse(Buffer.from(p, 'base64url'));
}

const waitFor = async (what, fn, ms = 15000) => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    // eslint-disable-next-line no-await-in-loop
    const v = await fn();
    if (v) return v;
    // eslint-disable-next-line no-await-in-loop
    await new Promise((r) => { setTimeout(r, 100); });
  }
  throw new Error(`no ${what} within ${ms} ms`);
};


/** The keymesh ring PURPOSE as node 2 serves it. */
async function ring(purpose) {
  const res = await fetch(`${d.cluster.url(2)}/api/admin/secrets/${purpose}`, {
    headers: { authorization: `Bearer ${d.cluster.adminKey(2)}` },
  });
  assert.equal(res.status, 200);
  return res.json();
}

/** Rotates ring PURPOSE; resolves the new signing key once it signs. */
async function rotate(purpose) {
  const before = (await ring(purpose)).keys.find((k) => k.signing);
  const res = await fetch(`${d.cluster.url(2)}/api/admin/secrets/${purpose}/rotate`, {
    method: 'POST', headers: { authorization: `Bearer ${d.cluster.adminKey(2)}` },
  });
  assert.equal(res.status, 200);
  const after = await waitFor(`a new ${purpose} key`, async () => {
    const k = (await ring(purpose)).keys.find((x) => x.signing);
    return k && k.kid !== before.kid && k;
  });
  // Every replica re-reads the rings every 300 ms.
  await new Promise((r) => { setTimeout(r, 1000); });
  return { before, after };
}

/** What the cookies library signs a cookie with (Keygrip, HMAC-SHA1). */
const cookieSig = (secret, name, value) => createHmac('sha1', Buffer.from(secret, 'base64url'))
  .update(`${name}=${value}`).digest('base64')
  .replace(/\/|\+|=/g, (x) => ({ '/': '_', '+': '-', '=': '' })[x]);

/** oidc-provider's DPoP nonce of SECRET at window STEP (60 s). */
const opNonce = (secret, step) => {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(step));
  return createHmac('sha256', Buffer.from(secret, 'base64url')).update(buf).digest('base64url');
};

/** A DPoP proof for a POST to HTU by a fresh key. */
function dpopProof(htu) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })}.${b64({
    htm: 'POST', htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID(),
  })}`;
  const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** The DPoP-Nonce the replica behind the load balancer hands out now. */
async function nonceNow() {
  const res = await fetch(`${d.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('rp1:rp1-secret').toString('base64')}`,
      dpop: dpopProof(`${d.issuer}/token`),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'use_dpop_nonce');
  return { nonce: res.headers.get('dpop-nonce'), replica: res.headers.get('x-replica') };
}

const nonceOf = (key, nonce) => {
  const step = Math.floor(Date.now() / 1000 / 60);
  return [step, step + 1, step + 2].some((s) => opNonce(key.secret, s) === nonce);
};

describe('secret rings', () => {
  test('cookie keys come from keymesh and rotate without signing anyone out', async () => {
    const { browser } = await codeFlow({ login: 'erin' });
    const value = browser.jar.get('_session');
    const signed = browser.jar.get('_session.sig');
    const { before, after: next } = await rotate('cookies');
    assert.equal(signed, cookieSig(before.secret, '_session', value), 'signed with the ring\'s key');
    // The next authorization on every replica: still signed in (no login
    // form), and the session cookie re-signed with the new key.
    for (let i = 0; i < 3; i += 1) {
      const { url, verifier } = await pkceRequest(rp, d.redirectUri);
      const callback = await browser.authorize(url, d.redirectUri, { login: 'nobody' });
      const tokens = await oidc.authorizationCodeGrant(rp, new URL(callback), { pkceCodeVerifier: verifier });
      assert.equal(tokens.claims().sub, 'erin');
    }
    assert.equal(
      browser.jar.get('_session.sig'),
      cookieSig(next.secret, '_session', browser.jar.get('_session')),
      're-signed with the new key',
    );
  });

  test('DPoP nonces are made with keymesh\'s ring on every replica and follow its rotation', async () => {
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair());
    const { tokens } = await codeFlow({ dpop });
    const { before, after: next } = await rotate('dpop');
    // Nonces handed out before the rotation still work after it.
    let current = await oidc.refreshTokenGrant(rp, tokens.refresh_token, undefined, { DPoP: dpop });
    const seen = new Set();
    for (let i = 0; i < 3; i += 1) {
      const { nonce, replica } = await nonceNow();
      seen.add(replica);
      assert.ok(nonceOf(next, nonce), `${replica} makes nonces with the new key`);
      assert.ok(!nonceOf(before, nonce));
    }
    assert.equal(seen.size, 3);
    for (let i = 0; i < 3; i += 1) {
      current = await oidc.refreshTokenGrant(rp, current.refresh_token, undefined, { DPoP: dpop });
      assert.equal(current.token_type.toLowerCase(), 'dpop');
    }
  });
});

describe('logout', () => {
  test('RP-initiated logout ends the session on every replica and sends a back-channel logout', async () => {
    const { browser, tokens } = await codeFlow({ login: 'carol' });
    const { sid } = tokens.claims();
    const before = d.receiver.tokens.length;
    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: `http://127.0.0.1:${d.receiver.port}/bye`,
    });
    const done = await browser.logout(end.href);
    assert.equal(done.status, 303);
    const token = await waitFor('logout token', () => d.receiver.tokens.length > before && d.receiver.tokens[before]);
    const claims = await verifyLogoutToken(token);
    assert.equal(claims.iss, d.issuer);
    assert.equal(claims.aud, 'rp1');
    assert.equal(claims.sub, 'carol');
    assert.equal(claims.sid, sid);
    assert.ok(claims.events['http://schemas.openid.net/event/backchannel-logout']);
    assert.equal(claims.nonce, undefined);
    // Signed out on every replica: the next authorization asks to log in.
    for (let i = 0; i < 3; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      const res = await browser.go(oidc.buildAuthorizationUrl(rp, {
        redirect_uri: d.redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
      }).href);
      assert.equal(res.status, 303);
      assert.match(res.headers.get('location'), /\/interaction\//);
    }
  });

  test('a logout from one client logs out that client only; the session goes on', async () => {
    const { browser, tokens } = await codeFlow({ login: 'frank' });
    // The same browser signs in to rp2 (its session, rp2's consent).
    const rp2 = await oidc.discovery(new URL(d.issuer), 'rp2', undefined, oidc.ClientSecretBasic('rp2-secret'), {
      execute: [oidc.allowInsecureRequests],
    });
    const { url, verifier } = await pkceRequest(rp2, d.redirectUri);
    const callback = await browser.authorize(url, d.redirectUri);
    const tokens2 = await oidc.authorizationCodeGrant(rp2, new URL(callback), { pkceCodeVerifier: verifier });
    assert.equal(tokens2.claims().sub, 'frank');
    const before = d.receiver.tokens.length;
    // "No, stay signed in": rp1 alone is logged out.
    await browser.logout(oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token }).href, { everywhere: false });
    const first = await waitFor('logout token', () => d.receiver.tokens.length > before && d.receiver.tokens[before]);
    const claims = await verifyLogoutToken(first);
    assert.equal(claims.aud, 'rp1');
    assert.equal(claims.sid, tokens.claims().sid);
    await new Promise((r) => { setTimeout(r, 1000); });
    assert.equal(d.receiver.tokens.length, before + 1, 'rp2 was not logged out');
    // Then everywhere, from rp2: rp2's token comes (rp1 is out already).
    await browser.logout(oidc.buildEndSessionUrl(rp2, { id_token_hint: tokens2.id_token }).href);
    const second = await waitFor('logout token', () => d.receiver.tokens.length > before + 1 && d.receiver.tokens[before + 1]);
    const claims2 = await verifyLogoutToken(second);
    assert.equal(claims2.aud, 'rp2');
    assert.equal(claims2.sid, tokens2.claims().sid);
    await new Promise((r) => { setTimeout(r, 1000); });
    assert.equal(d.receiver.tokens.length, before + 2);
  });

  test('a revocation in keymesh ends the OP session and logs the relying party out', async () => {
    const { browser, tokens } = await codeFlow({ login: 'dave' });
    const before = d.receiver.tokens.length;
    const res = await fetch(`${d.cluster.url(2)}/api/subjects/dave/sessions`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${d.cluster.adminKey(2)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'test' }),
    });
    assert.equal(res.status, 200);
    const token = await waitFor('logout token', () => d.receiver.tokens.length > before && d.receiver.tokens[before]);
    const claims = await verifyLogoutToken(token);
    assert.equal(claims.sub, 'dave');
    assert.equal(claims.sid, tokens.claims().sid);
    const again = await browser.go(oidc.buildAuthorizationUrl(rp, {
      redirect_uri: d.redirectUri, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
    }).href);
    assert.match(again.headers.get('location'), /\/interaction\//);
    const page = await browser.go(again.headers.get('location'));
    assert.match(await page.text(), /name="prompt" value="login"/);
  });
});

describe('faults', () => {
  test('kill -9 of a replica and its keymesh node mid-interaction: the flow completes on the others', async () => {
    const browser = new Browser(d.issuer);
    const { url, verifier } = await pkceRequest(rp, d.redirectUri, { prompt: 'consent' });
    let killed = false;
    const callback = await browser.authorize(url, d.redirectUri, {
      before: async (step) => {
        if (step !== 2 || killed) return;
        killed = true;
        // The replica that would answer next, and its node.
        await Promise.all([d.ops[1].stop('SIGKILL'), d.cluster.nodes[1].stop('SIGKILL')]);
      },
    });
    assert.ok(killed);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(callback), { pkceCodeVerifier: verifier });
    assert.equal(tokens.claims().sub, 'alice');
    assert.ok(browser.replicas.slice(3).every((r) => r !== 'op-1'));
  });
});
