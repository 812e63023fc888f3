// Wires an oidc-provider instance to keymesh beyond its adapter: cookie keys
// and DPoP nonce keys from keymesh's secret rings (all replicas hold the
// same, rotated by keymesh), replay detection through keymesh's registry,
// logouts through keymesh's sessions and back-channel logout outbox, and
// keymesh's signing keys in the OP's JWKS (they sign the logout tokens).
import { createHmac, timingSafeEqual } from 'node:crypto';

import { keymeshSid, requestScope } from './adapter.js';
import { segment } from './client.js';

const DPOP_STEP = 60; // seconds per nonce window, as oidc-provider 8.x

function step64(value) {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(value));
  return buf;
}

/** oidc-provider's nonce for SECRET at window STEP. */
const dpopNonce = (secret, step) => createHmac('sha256', secret).update(step64(step)).digest('base64url');

/** The keys of a keymesh ring, signing key first, as Buffers. */
function ringKeys(ring) {
  const keys = [...(ring.keys ?? [])];
  keys.sort((a, b) => Number(b.signing) - Number(a.signing));
  return keys.map((k) => Buffer.from(k.secret, 'base64url'));
}

/**
 * The signing key of keymesh's dpop ring: give it to oidc-provider as
 * `features.dPoP.nonceSecret` (attach() then follows the ring's rotations).
 */
export async function dpopNonceSecret(km) {
  const { body } = await km.call('GET', '/api/admin/secrets/dpop');
  return ringKeys(body)[0];
}

/**
 * Nonces over every live key of keymesh's dpop ring, in oidc-provider's
 * format: any replica accepts what another one handed out, across a
 * rotation of the ring.
 */
export class RingNonces {
  constructor(keys) {
    this.keys = keys;
  }

  nextNonce() {
    return dpopNonce(this.keys[0], Math.floor(Date.now() / 1000 / DPOP_STEP) + 1);
  }

  checkNonce(nonce) {
    if (typeof nonce !== 'string' || nonce.length !== 43) return false;
    const given = Buffer.from(nonce);
    const counter = Math.floor(Date.now() / 1000 / DPOP_STEP);
    let ok = false;
    for (const key of this.keys) {
      for (let step = counter - 2; step <= counter + 2; step += 1) {
        ok = timingSafeEqual(given, Buffer.from(dpopNonce(key, step))) || ok;
      }
    }
    return ok;
  }
}

/**
 * Attaches PROVIDER to keymesh; resolves once the cookie keys are loaded.
 *
 * @param {object} provider  an oidc-provider 8.x instance
 * @param {import('./client.js').Keymesh} km
 * @param {object} [options]
 * @param {object[]} [options.clients]  the static clients of the OP's
 *   configuration: their back-channel logout URIs are registered in
 *   keymesh, which sends the logout tokens
 * @param {number} [options.refreshInterval=10000]  ms between reads of the
 *   secret rings; shorter than keymesh's secrets.install_lead
 * @param {string} [options.jwksPath='/jwks']  the OP's jwks route
 * @param {Function} [options.onError]  called with errors of the
 *   background refresh (default: console.error)
 * @returns {Promise<{close: Function, refresh: Function}>}
 */
export async function attachKeymesh(provider, km, {
  clients = [], refreshInterval = 10000, jwksPath = '/jwks', onError = (err) => console.error(err),
} = {}) {
  // The OP's cookies are signed with the keys of keymesh's cookies ring,
  // its DPoP nonces (when it makes them) computed over the dpop ring's.
  const internal = await opInternals(provider);
  const nonces = internal?.DPoPNonces ? new RingNonces([]) : undefined;
  const refresh = async () => {
    const [cookies, dpop] = await Promise.all([
      km.call('GET', '/api/admin/secrets/cookies'),
      nonces ? km.call('GET', '/api/admin/secrets/dpop') : undefined,
    ]);
    const keys = ringKeys(cookies.body);
    if (keys.length) provider.app.keys = keys;
    const dk = dpop ? ringKeys(dpop.body) : [];
    if (dk.length) nonces.keys = dk;
  };
  await refresh();
  if (nonces) internal.DPoPNonces = nonces;
  const timer = setInterval(() => { refresh().catch(onError); }, refreshInterval);
  timer.unref();

  // Each request's reads are remembered for that request (see requestScope).
  provider.use((ctx, next) => requestScope.run(new Map(), next));

  // One-time values (DPoP proofs' and client assertions' jti) are
  // registered once for the whole cluster, atomically.
  provider.ReplayDetection.unique = async (iss, jti, exp) => {
    const now = Math.floor(Date.now() / 1000);
    const res = await km.call('POST', '/api/replay', {
      scope: 'oidc-provider', iss: String(iss), jti: String(jti), exp: Math.max(exp, now + 1),
    }, [200, 409]);
    return res.status === 200;
  };

  // Ending a session ends its keymesh session: keymesh queues the logout
  // tokens of every client that took part (durably, with retries) and the
  // revocation reaches every node. Done first: if keymesh cannot take it,
  // the OP's session is kept and the user can retry.
  const { destroy } = provider.Session.prototype;
  provider.Session.prototype.destroy = async function destroyEverywhere(...args) {
    if (this.accountId && this.uid) {
      await km.call('DELETE', `/api/sessions/${keymeshSid(this.uid)}`, { reason: 'op_logout' }, [200, 404]);
    }
    return destroy.apply(this, args);
  };
  // keymesh sends the back-channel logout tokens, not the OP.
  provider.Client.prototype.backchannelLogout = async function sentByKeymesh() {};

  // Relying parties register their logout URIs in keymesh.
  await Promise.all(clients.filter((c) => c.client_id).map((c) => km.call('PUT', `/api/admin/clients/${segment(c.client_id)}`, {
    backchannel_logout_uri: c.backchannel_logout_uri ?? '',
    backchannel_logout_session_required: !!c.backchannel_logout_session_required,
  })));

  // The OP's JWKS also publishes keymesh's keys, which sign logout tokens.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method !== 'GET' || ctx.path !== jwksPath || ctx.status !== 200) return;
    const { body } = await km.call('GET', '/api/pkeys');
    const own = ctx.body?.keys ?? [];
    const kids = new Set(own.map((k) => k.kid));
    ctx.body = { keys: [...own, ...(body?.keys ?? []).filter((k) => !kids.has(k.kid))] };
  });

  return {
    refresh,
    close() {
      clearInterval(timer);
    },
  };
}

/**
 * oidc-provider's private state of PROVIDER (its DPoP nonce source, read
 * once from features.dPoP.nonceSecret, is there): an internal weak map
 * (lib/helpers/weak_cache.js in 8.x). When it is not where it was, the
 * OP's own nonces stay, and every replica then needs the same nonceSecret
 * (dpopNonceSecret()) and a restart when the ring rotates.
 */
async function opInternals(provider) {
  try {
    const cache = await import('oidc-provider/lib/helpers/weak_cache.js');
    return cache.default(provider);
  } catch {
    return undefined;
  }
}
