// The negative control: the same flows on oidc-provider's own in-memory
// adapter. One replica works; three behind the same round-robin do not,
// so the end-to-end test passes only because keymesh shares the state.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import * as oidc from 'openid-client';

import { Browser } from './support/browser.js';
import { deploy } from './support/deployment.js';
import { pkceRequest } from './support/rp.js';

async function tryCodeFlow(d) {
  const rp = await oidc.discovery(new URL(d.issuer), 'rp1', undefined, oidc.ClientSecretBasic('rp1-secret'), {
    execute: [oidc.allowInsecureRequests],
  });
  const browser = new Browser(d.issuer);
  const { url, verifier } = await pkceRequest(rp, d.redirectUri);
  const callback = await browser.authorize(url, d.redirectUri);
  return oidc.authorizationCodeGrant(rp, new URL(callback), { pkceCodeVerifier: verifier });
}

/** Whether something accepts connections at URL's port on 127.0.0.1. */
function listening(url) {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('connect', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

test('one replica on the memory adapter completes the flow', async () => {
  const d = await deploy({ adapter: 'memory', replicas: 1 });
  try {
    const tokens = await tryCodeFlow(d);
    assert.equal(tokens.claims().sub, 'alice');
  } finally {
    await d.stop();
  }
  // Stopped means stopped: no process of it (the load balancer's worker
  // included) still listens.
  assert.equal(await listening(d.issuer), false, 'the load balancer still listens');
  assert.equal(await listening(d.opUrl(1)), false, 'the OP replica still listens');
});

test('three replicas on the memory adapter behind round-robin fail it', async () => {
  const d = await deploy({ adapter: 'memory', replicas: 3 });
  try {
    for (let i = 0; i < 3; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      await assert.rejects(tryCodeFlow(d), (err) => {
        // An interaction, session or code another replica made is unknown here.
        assert.match(String(err.message ?? err), /400|invalid_grant|interaction|session/i);
        return true;
      });
    }
  } finally {
    await d.stop();
  }
});
