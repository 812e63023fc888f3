// docs/openapi.yaml is a valid OpenAPI 3.1 document: `redocly lint` with
// the recommended rules (redocly.yaml) reports no error, and its only
// warnings are the request examples that are invalid on purpose (each is
// named like the 4xx response example it gets). Every response example
// also validates against its own schema.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  loadSpec, makeValidator, operations, responseExamples, specPath, deref, namedExamples,
} from './support/spec.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const redocly = path.join(here, 'node_modules/@redocly/cli/bin/cli.js');

function lint() {
  const out = spawnSync(process.execPath, [redocly, 'lint', '--config', path.join(here, 'redocly.yaml'),
    '--format=json', specPath], {
    cwd: here,
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    timeout: 60000,
  });
  if (out.error) throw out.error;
  const start = out.stdout.indexOf('{');
  if (start < 0) throw new Error(`redocly printed no report (exit ${out.status}):\n${out.stdout}\n${out.stderr}`);
  return { status: out.status, report: JSON.parse(out.stdout.slice(start)), stderr: out.stderr };
}

test('redocly lint: no errors, and warnings only for deliberately invalid examples', () => {
  const { status, report, stderr } = lint();
  const describe = (p) => `${p.severity} ${p.ruleId} at ${p.location?.[0]?.pointer}: ${p.message}`;
  const errors = report.problems.filter((p) => p.severity === 'error');
  assert.equal(errors.length, 0, `redocly lint errors:\n${errors.map(describe).join('\n')}\n${stderr}`);
  assert.equal(status, 0, `redocly lint exited with ${status}:\n${stderr}`);

  // The names of the examples documented as error answers.
  const spec = loadSpec();
  const errorExamples = new Set();
  for (const op of operations(spec)) {
    for (const ex of responseExamples(spec, op)) if (Number(ex.status) >= 400) errorExamples.add(ex.name);
  }
  const unexpected = report.problems.filter((p) => {
    if (p.severity !== 'warn') return false;
    if (!['no-invalid-media-type-examples', 'no-invalid-parameter-examples'].includes(p.ruleId)) return true;
    const m = (p.location?.[0]?.pointer ?? '').match(/\/examples\/([^/]+)/);
    return !m || !errorExamples.has(m[1]);
  });
  assert.deepEqual(unexpected.map(describe), [], 'warnings other than the deliberately invalid request examples');
});

test('every response example validates against its schema', () => {
  const spec = loadSpec();
  const validate = makeValidator(spec);
  const problems = [];
  let n = 0;
  for (const op of operations(spec)) {
    for (const [status, res] of Object.entries(op.responses)) {
      for (const [type, media] of Object.entries(res.content ?? {})) {
        if (!media.schema || type !== 'application/json') continue; // eslint-disable-line no-continue
        for (const [name, value] of Object.entries(namedExamples(spec, media))) {
          n += 1;
          for (const p of validate(media.schema, value)) problems.push(`${op.id} ${status} example ${name}: ${p}`);
        }
      }
    }
  }
  assert.ok(n > 50, `only ${n} response examples`);
  assert.deepEqual(problems, []);
});

test('every operation has an operationId (unique), a tag, a summary and examples', () => {
  const spec = loadSpec();
  const ids = new Set();
  for (const op of operations(spec)) {
    assert.ok(op.id, `${op.method} ${op.path}: no operationId`);
    assert.ok(!ids.has(op.id), `operationId ${op.id} twice`);
    ids.add(op.id);
    assert.ok(op.op.tags?.length, `${op.id}: no tag`);
    assert.ok(op.op.summary, `${op.id}: no summary`);
    assert.ok(Array.isArray(op.op.security), `${op.id}: no per-operation security`);
    const body = op.requestBody?.content?.['application/json'];
    if (body) assert.ok(Object.keys(deref(spec, body).examples ?? {}).length, `${op.id}: no request example`);
  }
});
