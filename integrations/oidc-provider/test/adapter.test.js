// The adapter against a real keymesh node (SQLite, loopback): what each
// oidc-provider model gets, exactly-once consumes, grant revocation, the
// index lookups, conditional interaction saves, and sessions that keymesh
// revokes and logs out.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  Keymesh, keymeshAdapter, keymeshSid, requestScope,
} from '../index.js';
import { startNode, tempDir } from './support/processes.js';

let tmp;
let node;
let km;
let Adapter;

before(async () => {
  tmp = tempDir();
  node = await startNode(tmp.dir);
  km = new Keymesh({ url: node.url, adminKey: node.adminKey });
  Adapter = keymeshAdapter(km);
});

after(async () => {
  km?.close();
  await node?.proc.stop('SIGKILL');
  tmp?.remove();
});

const id = () => `id-${Math.random().toString(36).slice(2)}-${Date.now()}`;
const nowS = () => Math.floor(Date.now() / 1000);

describe('objects', () => {
  test('a model is stored with its lifetime, found, and destroyed once', async () => {
    const codes = new Adapter('AuthorizationCode');
    const jti = id();
    await codes.upsert(jti, { jti, grantId: 'g1', kind: 'AuthorizationCode', exp: nowS() + 60 }, 60);
    assert.deepEqual(await codes.find(jti), {
      jti, grantId: 'g1', kind: 'AuthorizationCode', exp: (await codes.find(jti)).exp,
    });
    const raw = await km.call('GET', `/api/objects/AuthorizationCode/${jti}`);
    assert.ok(raw.body.expires_at - nowS() <= 60 && raw.body.expires_at - nowS() >= 58);
    assert.deepEqual(raw.body.indexes, { grantId: 'g1' });
    await codes.destroy(jti);
    assert.equal(await codes.find(jti), undefined);
    await codes.destroy(jti); // idempotent
    assert.equal(await new Adapter('AccessToken').find(id()), undefined);
  });

  test('a model saved without expiry is kept for defaultTtl', async () => {
    const clients = new Adapter('Client');
    await clients.upsert('dyn-client', { client_id: 'dyn-client', redirect_uris: ['https://rp/cb'] });
    const raw = await km.call('GET', '/api/objects/Client/dyn-client');
    assert.ok(raw.body.expires_at - nowS() > 13 * 24 * 3600);
    assert.deepEqual(await clients.find('dyn-client'), { client_id: 'dyn-client', redirect_uris: ['https://rp/cb'] });
  });

  test('ids that need encoding in a path round-trip', async () => {
    const a = new Adapter('PushedAuthorizationRequest');
    const odd = 'a/b?c=d&e f%2F';
    await a.upsert(odd, { x: 1 }, 30);
    assert.deepEqual(await a.find(odd), { x: 1 });
  });
});

describe('consume', () => {
  test('of racing consumes at two replicas exactly one wins; the loser ends the grant', async () => {
    const grantId = `grant-${id()}`;
    const replica1 = new (keymeshAdapter(km))('AuthorizationCode');
    const replica2 = new (keymeshAdapter(km))('AuthorizationCode');
    const jti = id();
    await replica1.upsert(jti, { jti, grantId }, 60);
    await new Adapter('AccessToken').upsert(`at-${jti}`, { grantId }, 3600);
    await new Adapter('Grant').upsert(grantId, { jti: grantId }, 3600);
    const outcomes = await Promise.allSettled([replica1.consume(jti), replica2.consume(jti)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.equal(lost[0].reason.message, 'invalid_grant');
    assert.equal(lost[0].reason.expose, true);
    assert.equal(lost[0].reason.statusCode, 400);
    // What the OP does when it sees a code used twice: the grant's tokens,
    // its codes and the grant end.
    assert.equal(await replica2.find(jti), undefined);
    assert.equal(await new Adapter('AccessToken').find(`at-${jti}`), undefined);
    assert.equal(await new Adapter('Grant').find(grantId), undefined);
  });

  test('a consumed object is found with the time it was consumed', async () => {
    const tokens = new Adapter('RefreshToken');
    const jti = id();
    await tokens.upsert(jti, { jti }, 600);
    await tokens.consume(jti);
    const found = await tokens.find(jti);
    assert.ok(Number.isInteger(found.consumed) && Math.abs(found.consumed - nowS()) <= 5);
  });

  test('a lost PAR race is an invalid request_uri, an absent code an invalid grant', async () => {
    const par = new Adapter('PushedAuthorizationRequest');
    const jti = id();
    await par.upsert(jti, { jti }, 60);
    await par.consume(jti);
    await assert.rejects(par.consume(jti), { message: 'invalid_request_uri' });
    await assert.rejects(new Adapter('RefreshToken').consume(id()), { message: 'invalid_grant' });
  });
});

describe('lookups', () => {
  test('revokeByGrantId destroys that model\'s objects of the grant only', async () => {
    const grantId = `grant-${id()}`;
    const at = new Adapter('AccessToken');
    const rt = new Adapter('RefreshToken');
    for (let i = 0; i < 5; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      await at.upsert(`at-${i}-${grantId}`, { grantId }, 600);
    }
    await at.upsert(`other-${grantId}`, { grantId: `${grantId}-other` }, 600);
    await rt.upsert(`rt-${grantId}`, { grantId }, 600);
    await at.revokeByGrantId(grantId);
    for (let i = 0; i < 5; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      assert.equal(await at.find(`at-${i}-${grantId}`), undefined);
    }
    assert.ok(await at.find(`other-${grantId}`));
    assert.ok(await rt.find(`rt-${grantId}`));
  });

  test('findByUid and findByUserCode find by index', async () => {
    const sessions = new Adapter('Session');
    const uid = id();
    await sessions.upsert(`s-${uid}`, { uid, kind: 'Session' }, 600);
    assert.deepEqual(await sessions.findByUid(uid), { uid, kind: 'Session' });
    assert.equal(await sessions.findByUid(id()), undefined);
    const devices = new Adapter('DeviceCode');
    const userCode = `UC-${id()}`;
    await devices.upsert(`d-${userCode}`, { userCode, grantId: 'g' }, 600);
    assert.deepEqual(await devices.findByUserCode(userCode), { userCode, grantId: 'g' });
  });
});

describe('interactions', () => {
  test('two replicas saving one interaction from the same version: the second is refused', async () => {
    const r1 = new (keymeshAdapter(km))('Interaction');
    const r2 = new (keymeshAdapter(km))('Interaction');
    const uid = id();
    await r1.upsert(uid, { uid, step: 'login' }, 3600);
    await r2.find(uid);
    await r1.find(uid);
    await r1.upsert(uid, { uid, step: 'consent', result: { login: { accountId: 'alice' } } }, 3600);
    await assert.rejects(
      r2.upsert(uid, { uid, step: 'consent', result: { login: { accountId: 'mallory' } } }, 3600),
      { message: 'invalid_request' },
    );
    assert.equal((await r2.find(uid)).result.login.accountId, 'alice');
    // Having read it again, it may save.
    await r2.upsert(uid, { uid, step: 'done' }, 3600);
    assert.equal((await r1.find(uid)).step, 'done');
  });
});

/** An adapter whose calls to keymesh are listed in CALLS. */
function counting(calls) {
  const counted = Object.create(km);
  counted.call = (method, path, ...rest) => {
    calls.push(`${method} ${path.split('?')[0].replace(/[^/]+$/, '')}`);
    return km.call(method, path, ...rest);
  };
  return keymeshAdapter(counted);
}

describe('one request', () => {
  test('reads an object once until it writes it', async () => {
    const calls = [];
    const grants = new (counting(calls))('Grant');
    const gid = id();
    await grants.upsert(gid, { jti: gid, n: 1 }, 600);
    await requestScope.run(new Map(), async () => {
      calls.length = 0;
      const a = await grants.find(gid);
      a.n = 99; // what the OP does to its copy is not what the next read gets
      assert.deepEqual(await grants.find(gid), { jti: gid, n: 1 });
      assert.equal(await grants.find(`${gid}-absent`), undefined);
      assert.equal(await grants.find(`${gid}-absent`), undefined);
      assert.deepEqual(calls, ['GET /api/objects/Grant/', 'GET /api/objects/Grant/']);
      await grants.upsert(gid, { jti: gid, n: 2 }, 600);
      assert.deepEqual(await grants.find(gid), { jti: gid, n: 2 });
    });
    // Another request reads again.
    calls.length = 0;
    await requestScope.run(new Map(), () => grants.find(gid));
    assert.deepEqual(calls, ['GET /api/objects/Grant/']);
  });

  test('a sign-in creates the keymesh session at once; later saves update it', async () => {
    const calls = [];
    const sessions = new (counting(calls))('Session');
    const uid = id();
    await requestScope.run(new Map(), async () => {
      assert.equal(await sessions.find(`s-${uid}`), undefined);
      calls.length = 0;
      await sessions.upsert(`s-${uid}`, { uid, accountId: 'hank', authorizations: {} }, 3600);
      assert.deepEqual(calls.sort(), ['POST /api/', 'PUT /api/objects/Session/']);
    });
    await requestScope.run(new Map(), async () => {
      assert.ok(await sessions.find(`s-${uid}`));
      calls.length = 0;
      await sessions.upsert(`s-${uid}`, { uid, accountId: 'hank', authorizations: { rp1: { sid: 'a' } } }, 3600);
      assert.deepEqual(calls.sort(), ['PATCH /api/sessions/', 'PUT /api/objects/Session/']);
    });
    assert.deepEqual((await km.call('GET', `/api/sessions/${keymeshSid(uid)}`)).body.clients, { rp1: 'a' });
  });
});

describe('sessions', () => {
  test('a signed-in session is a keymesh session with its clients; removed clients are logged out', async () => {
    const sessions = new Adapter('Session');
    const uid = id();
    const sid = keymeshSid(uid);
    await sessions.upsert(`s1-${uid}`, { uid, accountId: 'alice', authorizations: {} }, 3600);
    let ks = (await km.call('GET', `/api/sessions/${sid}`)).body;
    assert.equal(ks.sub, 'alice');
    assert.deepEqual(ks.clients, {});
    assert.equal(ks.idle_timeout, 3600);
    // The OP rotates the id at login; the uid (and the keymesh session) stay.
    await sessions.destroy(`s1-${uid}`);
    await sessions.upsert(`s2-${uid}`, {
      uid, accountId: 'alice', authorizations: { rp1: { sid: 'sid-rp1', grantId: 'g1' }, rp2: { sid: 'sid-rp2', grantId: 'g2' } },
    }, 3600);
    ks = (await km.call('GET', `/api/sessions/${sid}`)).body;
    assert.deepEqual(ks.clients, { rp1: 'sid-rp1', rp2: 'sid-rp2' });
    // A logout from rp1 only: the OP drops it from the session.
    await sessions.upsert(`s3-${uid}`, { uid, accountId: 'alice', authorizations: { rp2: { sid: 'sid-rp2' } } }, 3600);
    ks = (await km.call('GET', `/api/sessions/${sid}`)).body;
    assert.deepEqual(ks.clients, { rp2: 'sid-rp2' });
    assert.ok(await sessions.find(`s3-${uid}`));
    assert.ok(await sessions.findByUid(uid));
  });

  test('a save right after a read that changes no client does not write to keymesh', async () => {
    const calls = [];
    const sessions = new (counting(calls))('Session');
    const uid = id();
    const payload = { uid, accountId: 'gina', authorizations: { rp1: { sid: 'x' } } };
    await sessions.upsert(`s-${uid}`, payload, 3600);
    // One request (attachKeymesh runs each in requestScope): it reads the
    // session, then saves it.
    await requestScope.run(new Map(), async () => {
      await sessions.find(`s-${uid}`);
      calls.length = 0;
      await sessions.upsert(`s-${uid}`, payload, 3600);
      assert.deepEqual(calls, ['PUT /api/objects/Session/']);
      // A changed client list is written at once.
      await sessions.upsert(`s-${uid}`, { ...payload, authorizations: { rp1: { sid: 'x' }, rp2: { sid: 'y' } } }, 3600);
      assert.ok(calls.includes('PATCH /api/sessions/'));
    });
    assert.deepEqual((await km.call('GET', `/api/sessions/${keymeshSid(uid)}`)).body.clients, { rp1: 'x', rp2: 'y' });
  });

  test('a session revoked in keymesh is found no more, through any lookup', async () => {
    const sessions = new Adapter('Session');
    const uid = id();
    await sessions.upsert(`s-${uid}`, { uid, accountId: 'bob', authorizations: {} }, 3600);
    assert.ok(await sessions.find(`s-${uid}`));
    await km.call('DELETE', '/api/subjects/bob/sessions', { reason: 'test' });
    assert.equal(await sessions.find(`s-${uid}`), undefined);
    assert.equal(await sessions.findByUid(uid), undefined);
    // A save of the revoked session does not bring it back.
    await sessions.upsert(`s-${uid}`, { uid, accountId: 'bob', authorizations: {} }, 3600);
    assert.equal(await sessions.find(`s-${uid}`), undefined);
  });

  test('a session before sign-in has no keymesh session', async () => {
    const sessions = new Adapter('Session');
    const uid = id();
    await sessions.upsert(`s-${uid}`, { uid, authorizations: {} }, 3600);
    assert.deepEqual(await sessions.find(`s-${uid}`), { uid, authorizations: {} });
    const res = await km.call('GET', `/api/sessions/${keymeshSid(uid)}`, undefined, [200, 404]);
    assert.equal(res.status, 404);
  });
});
