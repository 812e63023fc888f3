// docs/openapi.yaml as the tests see it: parsed, its operations listed with
// their parameters and responses resolved, and one validator (ajv, JSON
// Schema 2020-12, which OpenAPI 3.1 uses) for request and response bodies.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const specPath = path.join(repoRoot, 'docs/openapi.yaml');

export const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** The document, parsed strictly (no duplicate keys, no YAML errors). */
export function loadSpec() {
  const doc = YAML.parseDocument(readFileSync(specPath, 'utf8'), { uniqueKeys: true });
  if (doc.errors.length) throw new Error(`docs/openapi.yaml: ${doc.errors.map((e) => e.message).join('\n')}`);
  return doc.toJS();
}

/** Follows internal $refs (#/...) until X is not a reference. */
export function deref(spec, x) {
  let cur = x;
  for (let i = 0; cur && typeof cur === 'object' && typeof cur.$ref === 'string'; i += 1) {
    if (i > 20 || !cur.$ref.startsWith('#/')) throw new Error(`cannot resolve ${cur.$ref}`);
    cur = cur.$ref.slice(2).split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((o, k) => (o === undefined ? undefined : o[k]), spec);
    if (cur === undefined) throw new Error(`dangling reference ${x.$ref}`);
  }
  return cur;
}

/** Named examples of a media type or parameter, resolved: { name: value }. */
export function namedExamples(spec, holder) {
  const out = {};
  for (const [name, ex] of Object.entries(holder?.examples ?? {})) out[name] = deref(spec, ex).value;
  return out;
}

/**
 * Every operation: { id, method, path, op, params, requestBody, responses,
 * security }, with path-level parameters merged in and references resolved
 * (schemas stay as they are; the validator resolves those).
 */
export function operations(spec) {
  const out = [];
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const method of methods) {
      const op = item[method];
      if (!op) continue; // eslint-disable-line no-continue
      const params = new Map();
      for (const prm of [...(item.parameters ?? []), ...(op.parameters ?? [])]) {
        const r = deref(spec, prm);
        params.set(`${r.in}:${r.name}`, r);
      }
      const responses = {};
      for (const [status, res] of Object.entries(op.responses ?? {})) {
        const r = deref(spec, res);
        const headers = {};
        for (const [h, hv] of Object.entries(r.headers ?? {})) headers[h] = deref(spec, hv);
        responses[status] = { ...r, headers };
      }
      out.push({
        id: op.operationId,
        method,
        path: p,
        op,
        params: [...params.values()],
        requestBody: op.requestBody ? deref(spec, op.requestBody) : undefined,
        responses,
        security: op.security ?? spec.security ?? [],
      });
    }
  }
  return out;
}

/** The named examples of every response of OPERATION: [{ status, name, value }]. */
export function responseExamples(spec, operation) {
  const out = [];
  for (const [status, res] of Object.entries(operation.responses)) {
    for (const [type, media] of Object.entries(res.content ?? {})) {
      for (const [name, value] of Object.entries(namedExamples(spec, media))) {
        out.push({
          status, type, name, value,
        });
      }
    }
  }
  return out;
}

function rewriteRefs(x) {
  if (Array.isArray(x)) return x.map(rewriteRefs);
  if (!x || typeof x !== 'object') return x;
  const out = {};
  for (const [k, v] of Object.entries(x)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')
      ? `urn:keymesh:openapi#/$defs/${v.slice('#/components/schemas/'.length)}`
      : rewriteRefs(v);
  }
  return out;
}

/**
 * A validator over the document's schemas: validate(schema, value) →
 * a list of problems (empty when VALUE is valid). Formats are checked
 * (ajv-formats); ajv runs in strict mode, so a schema keyword it does not
 * know, or an unknown format, fails loudly instead of being ignored.
 */
export function makeValidator(spec) {
  // strictRequired off: `oneOf: [{required: [sid]}, ...]` names members
  // that the enclosing schema defines, which is valid JSON Schema.
  const ajv = new Ajv2020({
    strict: true, strictRequired: false, allErrors: true, validateFormats: true,
  });
  addFormats(ajv);
  ajv.addSchema({ $id: 'urn:keymesh:openapi', $defs: rewriteRefs(spec.components?.schemas ?? {}) });
  const cache = new WeakMap();
  return function validate(schema, value) {
    let fn = cache.get(schema);
    if (!fn) {
      fn = ajv.compile(rewriteRefs(schema));
      cache.set(schema, fn);
    }
    if (fn(value)) return [];
    return fn.errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
  };
}

/**
 * Checks an answer against OPERATION's documentation: the status is one it
 * documents, the media type one that status documents, the body valid for
 * that media type's schema, and the required headers present. Returns a
 * list of problems (empty: it conforms).
 */
export function checkResponse(validate, operation, { status, headers, contentType, body }) {
  const problems = [];
  const doc = operation.responses[String(status)] ?? operation.responses.default;
  if (!doc) return [`${operation.id}: status ${status} is not documented (documented: ${Object.keys(operation.responses).join(', ')})`];
  for (const [name, h] of Object.entries(doc.headers ?? {})) {
    const v = headers?.[name.toLowerCase()];
    if (h.required && v === undefined) problems.push(`${operation.id} ${status}: header ${name} is missing`);
    if (v !== undefined && h.schema) {
      const typed = h.schema.type === 'integer' && /^-?\d+$/.test(v) ? Number(v) : v;
      for (const p of validate(h.schema, typed)) problems.push(`${operation.id} ${status}: header ${name}: ${p}`);
    }
  }
  const content = doc.content ?? {};
  if (Object.keys(content).length === 0) {
    if (body !== undefined && body !== '') problems.push(`${operation.id} ${status}: documented without a body, but has one`);
    return problems;
  }
  const media = (contentType ?? '').split(';')[0].trim().toLowerCase();
  const entry = content[media];
  if (!entry) {
    problems.push(`${operation.id} ${status}: content type ${contentType} is not documented (documented: ${Object.keys(content).join(', ')})`);
    return problems;
  }
  if (entry.schema) {
    let value = body;
    if (media === 'application/json' && typeof body === 'string') {
      try {
        value = JSON.parse(body);
      } catch (e) {
        problems.push(`${operation.id} ${status}: the body is not JSON: ${e.message}`);
        return problems;
      }
    }
    for (const p of validate(entry.schema, value)) problems.push(`${operation.id} ${status}: ${p}`);
  }
  return problems;
}
