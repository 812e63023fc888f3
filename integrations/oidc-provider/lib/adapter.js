// node oidc-provider's adapter interface over keymesh: every model is an
// object of keymesh's replicated `objects` keyspace, single-use models are
// consumed exactly once cluster-wide, and a signed-in Session is also a
// keymesh session (derived sid) that records which clients took part, so
// that a revocation anywhere ends it and keymesh's outbox logs its relying
// parties out.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';

import { KeymeshError, segment } from './client.js';

/** The models whose objects carry a grantId (revoked together). */
export const GRANT_MODELS = [
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest',
];

/** Models the OP consumes once (codes, rotated refresh tokens, PAR). */
export const CONSUMABLE_MODELS = new Set([
  'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest',
]);

const INDEXED_FIELDS = ['grantId', 'uid', 'userCode'];
const MAX_INDEX_BYTES = 512;
const LISTED_AT_MOST = 1000;

/**
 * One OP request's reads (attachKeymesh runs each request in it): the OP
 * reads an interaction, session or grant several times while it handles
 * one request; within that request the first answer stands, until the
 * request itself writes the object. A save stays conditional on the
 * version read.
 */
export const requestScope = new AsyncLocalStorage();
const ABSENT = Symbol('absent');

/** The value of FIND, memoized under KEY in the current request. */
async function memoized(key, find) {
  const memo = requestScope.getStore();
  if (!memo) return find();
  if (memo.has(key)) {
    const v = memo.get(key);
    return v === ABSENT ? undefined : structuredClone(v);
  }
  const v = await find();
  memo.set(key, v === undefined ? ABSENT : structuredClone(v));
  return v;
}

/** Forgets what the current request read of KIND (it writes one). */
function forget(kind) {
  const memo = requestScope.getStore();
  if (!memo) return;
  for (const key of memo.keys()) if (key.startsWith(`${kind}\0`)) memo.delete(key);
}

/**
 * The keymesh sid of an OP session: 22 base64url characters of SHA-256 of
 * its uid (the uid stays while the OP rotates the session's id).
 */
export function keymeshSid(uid) {
  return createHash('sha256').update(`oidc-provider session ${uid}`).digest('base64url').slice(0, 22);
}

const now = () => Math.floor(Date.now() / 1000);

/** An error the OP renders as its own (`expose`: the client sees it). */
function opError(code, description) {
  return Object.assign(new Error(code), {
    error: code, error_description: description, expose: true, statusCode: 400, status: 400,
  });
}

/** The object's payload as the OP stored it, `consumed` when it was. */
function payloadOf(object) {
  if (!object) return undefined;
  const payload = object.value;
  if (object.consumed_at !== undefined && payload && typeof payload === 'object') {
    return { ...payload, consumed: object.consumed_at };
  }
  return payload;
}

/** The newest object of a list (a uid or user code the OP rotated under). */
const newest = (objects) => objects.reduce(
  (best, o) => (!best || o.created_at > best.created_at ? o : best),
  undefined,
);

/**
 * The adapter class to give oidc-provider (`adapter: keymeshAdapter(km)`).
 *
 * @param {import('./client.js').Keymesh} km
 * @param {object} [options]
 * @param {number} [options.defaultTtl=1209600]  seconds kept for a model the
 *   OP saves without expiry (dynamic Clients, registration tokens, a Grant
 *   without ttl.Grant); at most keymesh's objects.max_ttl
 * @param {number} [options.sessionMaxAge=2592000]  the absolute lifetime of
 *   a keymesh session (at most its sessions.max_ttl); the OP's sliding
 *   expiry is its idle timeout
 * @param {boolean} [options.checkSessions=true]  a signed-in Session is
 *   found only while its keymesh session lives (a revocation anywhere ends
 *   it at once)
 * @param {number} [options.touchEvery=60]  seconds: a save of a session
 *   whose clients did not change since the same request read it (with
 *   attachKeymesh) touches its keymesh session (its idle deadline) at
 *   most this often
 */
export function keymeshAdapter(km, {
  defaultTtl = 14 * 24 * 3600, sessionMaxAge = 30 * 24 * 3600, checkSessions = true,
  touchEvery = 60,
} = {}) {
  // The version of each Interaction this process last read or wrote: its
  // next save is conditional on it (two tabs or replicas cannot overwrite
  // each other's step).
  const versions = new Map();
  const remember = (id, version) => {
    versions.delete(id);
    versions.set(id, version);
    if (versions.size > 10000) versions.delete(versions.keys().next().value);
  };

  // What this request read of each keymesh session (by OP uid), in the
  // request's memo: the session as keymesh answered, or null when it was
  // read signed in without asking keymesh. A save that changes nothing
  // right after needs no PATCH; a save of a signed-in session this
  // request did not read signed in is a sign-in.
  const sessionKey = (uid) => `keymesh\0${uid}`;
  const note = (uid, session) => requestScope.getStore()?.set(sessionKey(uid), session ?? null);
  const unchanged = (uid, clients) => {
    const known = requestScope.getStore()?.get(sessionKey(uid));
    return !!known && Date.now() - (known.last_seen ?? 0) * 1000 < touchEvery * 1000
      && JSON.stringify(Object.entries(known.clients ?? {}).sort())
        === JSON.stringify(Object.entries(clients).sort());
  };

  const objectPath = (kind, id) => `/api/objects/${segment(kind)}/${segment(id)}`;
  const indexPath = (kind, field, value) => `/api/objects/${segment(kind)}?index=${segment(field)}&value=${segment(value)}`;

  async function getObject(kind, id) {
    const { status, body } = await km.call('GET', objectPath(kind, id), undefined, [200, 404]);
    return status === 200 ? body : undefined;
  }

  async function destroyIndexed(kind, field, value) {
    for (;;) {
      // Lookups answer at most 1,000 at a time.
      // eslint-disable-next-line no-await-in-loop
      const { body } = await km.call('DELETE', indexPath(kind, field, value));
      if (!body || body.destroyed < LISTED_AT_MOST) return;
    }
  }

  /** What the OP does when it finds a code used twice: end the grant. */
  async function revokeGrant(grantId) {
    if (!grantId) return;
    await Promise.all([
      ...GRANT_MODELS.map((kind) => destroyIndexed(kind, 'grantId', grantId)),
      km.call('DELETE', objectPath('Grant', grantId), undefined, [200, 404]),
    ]);
  }

  /**
   * Records the clients of a signed-in session in its keymesh session
   * (creating it on the first save), and logs out the clients the OP
   * removed from it (a logout from one client).
   */
  async function syncSession(payload, expiresIn) {
    const sid = keymeshSid(payload.uid);
    const clients = {};
    for (const [clientId, auth] of Object.entries(payload.authorizations ?? {})) {
      clients[clientId] = typeof auth?.sid === 'string' ? auth.sid : '';
    }
    if (unchanged(payload.uid, clients)) return;
    const idle = Math.max(1, Math.min(Math.ceil(expiresIn ?? sessionMaxAge), sessionMaxAge));
    const create = async () => {
      const created = await km.call('POST', '/api/sessions', {
        sid, sub: String(payload.accountId), ttl: sessionMaxAge, idle_timeout: idle, clients,
      }, [201, 409]);
      if (created.status === 201) note(payload.uid, created.body);
      return created.status === 201;
    };
    const patch = () => km.call('PATCH', `/api/sessions/${sid}`, { clients, touch: true }, [200, 404]);
    // A request that saves a signed-in session it did not read signed in
    // is a sign-in: its keymesh session is made now (or merged into, when
    // another replica made it a moment before).
    const memo = requestScope.getStore();
    if (memo && !memo.has(sessionKey(payload.uid)) && await create()) return;
    let res = await patch();
    if (res.status === 404) {
      if (/revoked/.test(res.body?.error_description ?? '')) {
        return; // ended elsewhere: the next find says so
      }
      if (await create()) return;
      res = await patch(); // another replica created it first
      if (res.status !== 200) return;
    }
    const removed = Object.keys(res.body?.clients ?? {}).filter((c) => !(c in clients));
    note(payload.uid, { ...res.body, clients });
    await Promise.all(removed.map((c) => km.call(
      'DELETE',
      `/api/sessions/${sid}/clients/${segment(c)}`,
      undefined,
      [200, 404],
    )));
  }

  /** PAYLOAD when its keymesh session lives (signed-in sessions only). */
  async function liveSession(payload) {
    if (!payload?.accountId || !payload.uid) return payload;
    if (!checkSessions) {
      note(payload.uid, null);
      return payload;
    }
    const { status, body } = await km.call('GET', `/api/sessions/${keymeshSid(payload.uid)}`, undefined, [200, 404]);
    note(payload.uid, status === 200 ? body : null);
    return status === 200 ? payload : undefined;
  }

  return class KeymeshAdapter {
    constructor(name) {
      this.name = name;
    }

    async upsert(id, payload, expiresIn) {
      forget(this.name);
      const ttl = expiresIn === undefined || expiresIn === null
        ? defaultTtl
        : Math.max(1, Math.ceil(expiresIn));
      const indexes = {};
      for (const field of INDEXED_FIELDS) {
        const v = payload?.[field];
        if (typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= MAX_INDEX_BYTES) {
          indexes[field] = v;
        }
      }
      const body = { value: payload, ttl, indexes };
      const known = this.name === 'Interaction' ? versions.get(id) : undefined;
      if (known) body.if_version = known;
      const put = km.call('PUT', objectPath(this.name, id), body, [200, 412]).then(({ status, body: o }) => {
        if (status === 412) {
          versions.delete(id);
          throw opError('invalid_request', 'the interaction was changed by another request; start over');
        }
        if (this.name === 'Interaction') remember(id, o.version);
      });
      if (this.name === 'Session' && payload?.accountId && payload.uid) {
        await Promise.all([put, syncSession(payload, expiresIn)]);
      } else {
        await put;
      }
    }

    async find(id) {
      return memoized(`${this.name}\0${id}`, async () => {
        const object = await getObject(this.name, id);
        if (object && this.name === 'Interaction') remember(id, object.version);
        const payload = payloadOf(object);
        return this.name === 'Session' ? liveSession(payload) : payload;
      });
    }

    async findByUid(uid) {
      return memoized(`${this.name}\0uid\0${uid}`, () => this.findByUidNow(uid));
    }

    async findByUidNow(uid) {
      const [list, live] = await Promise.all([
        km.call('GET', indexPath(this.name, 'uid', uid)),
        this.name === 'Session' && checkSessions
          ? km.call('GET', `/api/sessions/${keymeshSid(uid)}`, undefined, [200, 404])
          : undefined,
      ]);
      const payload = payloadOf(newest(list.body.objects ?? []));
      if (payload?.accountId) note(uid, live?.status === 200 ? live.body : null);
      if (!payload) return undefined;
      // Signed in, and its keymesh session ended: the session is over.
      if (live && payload.accountId && live.status !== 200) return undefined;
      return payload;
    }

    async findByUserCode(userCode) {
      const { body } = await km.call('GET', indexPath(this.name, 'userCode', userCode));
      const objects = body.objects ?? [];
      const open = objects.filter((o) => o.consumed_at === undefined);
      return payloadOf(newest(open.length ? open : objects));
    }

    async consume(id) {
      forget(this.name);
      // One key per consume: a retry after a lost answer is answered again
      // to the winner, never decided twice.
      const res = await km.call(
        'POST',
        `${objectPath(this.name, id)}/consume`,
        { idempotency_key: randomUUID() },
        [200, 404, 409],
      );
      if (res.status === 200) return;
      if (this.name === 'PushedAuthorizationRequest') {
        throw Object.assign(opError('invalid_request_uri', 'request_uri is invalid, expired, or was already used'));
      }
      if (res.status === 409) {
        // Another replica redeemed it a moment before: what the OP does on
        // a reuse it sees itself (the grant ends), then refuse.
        const object = await getObject(this.name, id);
        await revokeGrant(object?.value?.grantId);
        throw opError('invalid_grant', 'grant request is invalid');
      }
      throw opError('invalid_grant', 'grant request is invalid');
    }

    async destroy(id) {
      forget(this.name);
      versions.delete(id);
      await km.call('DELETE', objectPath(this.name, id), undefined, [200, 404]);
    }

    async revokeByGrantId(grantId) {
      await destroyIndexed(this.name, 'grantId', grantId);
    }
  };
}

export { KeymeshError };
