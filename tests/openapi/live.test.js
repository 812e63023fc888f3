// docs/openapi.yaml against a real node (KEYMESH_BIN): every operation's
// examples are sent (support/scenario.js says in which order and what to
// substitute), and every answer must be documented: its status for that
// operation, its body valid for that status's schema and media type, its
// required headers present. Then: every operation was answered with a 2xx,
// every documented error example was answered as documented, every route
// of the server's route table (http/api.cpp) is in the document, and
// GET /api/openapi.json is this very document.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  after, before, describe, test,
} from 'node:test';

import { startNode } from './support/node.js';
import { steps } from './support/scenario.js';
import {
  checkResponse, loadSpec, makeValidator, namedExamples, operations, repoRoot, responseExamples,
} from './support/spec.js';

const spec = loadSpec();
const validate = makeValidator(spec);
const ops = new Map(operations(spec).map((o) => [o.id, o]));

const isAdmin = (op) => op.security.length > 0 && op.security.every((req) => 'adminKey' in req);

/** The status documented for example NAME of OP (by its response examples), if any. */
function statusOfExample(op, name) {
  const found = responseExamples(spec, op).filter((e) => e.name === name);
  const statuses = [...new Set(found.map((e) => e.status))];
  assert.ok(statuses.length <= 1, `${op.id}: example ${name} under several statuses ${statuses}`);
  return statuses[0];
}

const resolve = (v, ctx) => (typeof v === 'function' ? v(ctx) : v);

/** Builds the request of STEP from the document's examples. */
function buildRequest(step, op, ctx, url, adminKey) {
  let target = op.path;
  const query = new URLSearchParams();
  const headers = {};
  for (const prm of op.params) {
    const named = namedExamples(spec, prm);
    let value;
    if (step.params && prm.name in step.params) value = resolve(step.params[prm.name], ctx);
    else if (step.ex !== undefined && step.ex in named) value = named[step.ex];
    else if (prm.in === 'path' || prm.required) value = prm.example ?? Object.values(named)[0];
    if (value === undefined) continue; // eslint-disable-line no-continue
    if (prm.in === 'path') target = target.replace(`{${prm.name}}`, encodeURIComponent(String(value)));
    else if (prm.in === 'query') query.set(prm.name, String(value));
    else if (prm.in === 'header') headers[prm.name.toLowerCase()] = String(value);
  }
  assert.ok(!/[{}]/.test(target), `${op.id}: unfilled path parameter in ${target}`);
  for (const [k, v] of Object.entries(step.headers ?? {})) headers[k.toLowerCase()] = resolve(v, ctx);

  let body;
  const media = op.requestBody?.content?.['application/json'];
  if (media) {
    const named = namedExamples(spec, media);
    let value = step.ex !== undefined && step.ex in named ? structuredClone(named[step.ex]) : undefined;
    if (step.body) value = step.body(value, ctx);
    if (value === undefined && step.firstExample) value = Object.values(named)[0];
    if (value !== undefined) body = value;
  }
  assert.ok(body !== undefined || !op.requestBody?.required, `${op.id}: step ${step.ex ?? step.label} has no body`);
  if (body !== undefined) headers['content-type'] = step.contentType ?? 'application/json';

  if (isAdmin(op) && step.auth !== 'none') headers.authorization = step.auth === 'wrong' ? 'Bearer not-the-admin-key-0000' : `Bearer ${adminKey}`;
  const qs = query.toString();
  return {
    url: `${url}${target}${qs ? `?${qs}` : ''}`,
    method: op.method.toUpperCase(),
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    sentBody: body,
  };
}

/** Sends REQ; an event stream is read up to its first chunk, then closed. */
async function send(req) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 15000);
  try {
    const res = await fetch(req.url, {
      method: req.method, headers: req.headers, body: req.body, redirect: 'manual', signal: ctl.signal,
    });
    const type = res.headers.get('content-type') ?? '';
    let text;
    if (type.startsWith('text/event-stream')) {
      const reader = res.body.getReader();
      const { value } = await reader.read();
      text = Buffer.from(value ?? []).toString('utf8');
      ctl.abort();
    } else {
      text = await res.text();
    }
    return { res, type, text };
  } finally {
    clearTimeout(timer);
  }
}

describe('docs/openapi.yaml against a live node', { timeout: 100000 }, () => {
  let node;
  const ctx = {};
  const seen = []; // { op, ex, status }
  const sentBodies = []; // { op, ex }

  before(async () => {
    node = await startNode({
      // Cheap password hashes, and a lock after two failures (429 in reach).
      KEYMESH_AUTH_SCRYPT_LOG2_N: '10',
      KEYMESH_AUTH_MAX_FAILURES: '2',
    });
  });

  after(async () => {
    if (node) await node.stop();
  });

  /** Runs STEP and checks its answer against the document. */
  async function run(step) {
    const op = ops.get(step.op);
    assert.ok(op, `no operation ${step.op} in the document`);
    if (step.before) await step.before(ctx);
    const req = buildRequest(step, op, ctx, node.url, node.adminKey);
    const { res, type, text } = await send(req);
    const where = `${req.method} ${req.url.slice(node.url.length)} → ${res.status} ${text.slice(0, 300)}`;
    if (process.env.OPENAPI_TRACE) process.stderr.write(`${step.op} [${step.ex ?? ''}] ${where}\n`);
    const problems = checkResponse(validate, op, {
      status: res.status,
      headers: Object.fromEntries(res.headers),
      contentType: type,
      body: text,
    });
    assert.deepEqual(problems, [], where);
    const expected = step.status ?? (step.ex !== undefined ? statusOfExample(op, step.ex) : undefined);
    if (expected !== undefined) assert.equal(String(res.status), String(expected), where);
    else assert.ok(res.status >= 200 && res.status < 300, `expected a 2xx: ${where}`);
    const json = type.startsWith('application/json') ? JSON.parse(text) : text;
    // An error answer carries the code its example documents.
    const example = step.ex !== undefined
      && responseExamples(spec, op).find((e) => e.name === step.ex && e.status === String(res.status));
    if (example && res.status >= 400 && example.value?.error) assert.equal(json.error, example.value.error, where);
    // A body the server accepted is one the request schema accepts too.
    if (res.status < 300 && req.sentBody !== undefined) {
      const schema = op.requestBody.content['application/json'].schema;
      assert.deepEqual(validate(schema, req.sentBody), [], `the server accepted a body its schema refuses: ${where}`);
    }
    seen.push({ op: op.id, ex: step.ex, status: String(res.status) });
    if (req.sentBody !== undefined && step.ex !== undefined) sentBodies.push({ op: op.id, ex: step.ex });
    if (step.check) step.check(json, assert, ctx);
    if (step.save) step.save(json, ctx, res);
  }

  test('the admin key, and the media type, are checked on every route', async (t) => {
    for (const op of ops.values()) {
      const documented = new Set(responseExamples(spec, op).map((e) => `${e.status} ${e.name}`));
      if (documented.has('401 missingKey')) {
        // eslint-disable-next-line no-await-in-loop
        await t.test(`${op.id} without a key`, () => run({ op: op.id, ex: 'missingKey', auth: 'none', firstExample: true }));
      }
      if (documented.has('403 wrongKey')) {
        // eslint-disable-next-line no-await-in-loop
        await t.test(`${op.id} with a wrong key`, () => run({ op: op.id, ex: 'wrongKey', auth: 'wrong', firstExample: true }));
      }
      if (documented.has('415 notJson')) {
        // eslint-disable-next-line no-await-in-loop
        await t.test(`${op.id} with text/plain`, () => run({
          op: op.id, ex: 'notJson', contentType: 'text/plain', firstExample: true,
        }));
      }
    }
  });

  test('the scenario: every operation, its examples, each answer as documented', async (t) => {
    for (const step of steps) {
      const name = `${step.op}${step.ex ? ` [${step.ex}]` : ''}${step.label ? ` (${step.label})` : ''}`;
      await t.test(name, () => run(step)); // eslint-disable-line no-await-in-loop
    }
  });

  test('coverage: a 2xx for every operation, every error example, every request example', () => {
    const missing = [];
    for (const op of ops.values()) {
      // Its own test below, so that a missing route fails only that one.
      if (op.id === 'getOpenApiDocument') continue; // eslint-disable-line no-continue
      if (!seen.some((s) => s.op === op.id && s.status.startsWith('2'))) missing.push(`${op.id}: no 2xx answer`);
      for (const ex of responseExamples(spec, op)) {
        if (Number(ex.status) < 400) continue; // eslint-disable-line no-continue
        if (!seen.some((s) => s.op === op.id && s.ex === ex.name && s.status === ex.status)) {
          missing.push(`${op.id}: error example ${ex.status} ${ex.name} never answered`);
        }
      }
      const media = op.requestBody?.content?.['application/json'];
      for (const name of Object.keys(media ? namedExamples(spec, media) : {})) {
        if (!sentBodies.some((s) => s.op === op.id && s.ex === name)) missing.push(`${op.id}: request example ${name} never sent`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('GET /api/openapi.json is docs/openapi.yaml', async () => {
    const op = ops.get('getOpenApiDocument');
    const res = await fetch(`${node.url}/api/openapi.json`);
    const text = await res.text();
    assert.deepEqual(checkResponse(validate, op, {
      status: res.status, headers: Object.fromEntries(res.headers), contentType: res.headers.get('content-type'), body: text,
    }), [], `GET /api/openapi.json → ${res.status} ${text.slice(0, 200)}`);
    assert.deepStrictEqual(JSON.parse(text), spec);
  });
});

test('every route of the server (http/api.cpp) is in the document', () => {
  const source = readFileSync(path.join(repoRoot, 'http/api.cpp'), 'utf8');
  const routes = [...source.matchAll(/add\(\s*verb::(\w+?)_?\s*,\s*"([^"]+)"/g)].map(([, verb, p]) => `${verb} ${p}`);
  assert.ok(routes.length > 50, `only ${routes.length} routes found in http/api.cpp`);
  const documented = new Set([...ops.values()].map((o) => `${o.method} ${o.path}`));
  assert.deepEqual(routes.filter((r) => !documented.has(r)), [], 'routes without documentation');
});

test('the validator rejects what does not conform (negative control)', () => {
  const op = ops.get('createSession');
  const good = {
    sid: 'rWx75l99hBTMxhVjGrTWLQ', sub: 'alice', created_at: 1, expires_at: 2, last_seen: 1, idle_timeout: 0, attributes: {}, clients: {},
  };
  const ok = (body, status = 201, type = 'application/json') => checkResponse(validate, op, {
    status, headers: {}, contentType: type, body: JSON.stringify(body),
  });
  assert.deepEqual(ok(good), []);
  assert.notDeepEqual(ok({ ...good, sub: 42 }), [], 'a wrong type');
  assert.notDeepEqual(ok({ ...good, surprise: true }), [], 'an undocumented member');
  const { sid, ...noSid } = good; // eslint-disable-line no-unused-vars
  assert.notDeepEqual(ok(noSid), [], 'a required member missing');
  assert.notDeepEqual(ok({ ...good, sid: 'short' }), [], 'a pattern');
  assert.notDeepEqual(ok(good, 202), [], 'an undocumented status');
  assert.notDeepEqual(ok(good, 201, 'text/html'), [], 'an undocumented media type');
  assert.notDeepEqual(ok({ error: 'conflict' }, 409), [], 'an error without its description');
  const discovery = ops.get('getOpenIdConfiguration');
  assert.notDeepEqual(checkResponse(validate, discovery, {
    status: 200,
    headers: { 'cache-control': 'public, max-age=300' },
    contentType: 'application/json',
    body: JSON.stringify({
      issuer: 'x', jwks_uri: 'not a uri', id_token_signing_alg_values_supported: ['ES256'], subject_types_supported: ['public'],
    }),
  }), [], 'a format (uri)');
  assert.notDeepEqual(checkResponse(validate, ops.get('getJwks'), {
    status: 304, headers: {}, contentType: undefined, body: '',
  }), [], 'a required header missing');
});
