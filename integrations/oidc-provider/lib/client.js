// A small client of keymesh's HTTP API: keep-alive connections to one node,
// the admin key on every call, JSON in and out, bounded time, and retries
// only where a retry cannot change the outcome.
import http from 'node:http';
import https from 'node:https';

/** An answer keymesh gave that the caller did not expect. */
export class KeymeshError extends Error {
  constructor(method, path, status, body) {
    const what = body?.error_description ?? body?.error ?? `HTTP ${status}`;
    super(`keymesh ${method} ${path}: ${status} ${what}`);
    this.name = 'KeymeshError';
    this.status = status;
    this.body = body;
  }
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// A reused keep-alive connection the server closed meanwhile fails before
// the request was read: safe to send again on a fresh one.
const staleConnection = (err, req) => req.reusedSocket
  && (err.code === 'ECONNRESET' || err.code === 'EPIPE');

export class Keymesh {
  /**
   * @param {object} options
   * @param {string} options.url  the local node, e.g. http://127.0.0.1:8080
   * @param {string} options.adminKey  a bearer key of the node's admin.keys
   * @param {number} [options.timeout=5000]  ms per attempt
   * @param {number} [options.retryFor=8000]  ms during which a 503
   *   "unavailable" (nothing was decided: a node of the cluster just
   *   failed, a partition is being handed over) is retried, with backoff
   * @param {number} [options.maxSockets=64]
   * @param {string|Buffer} [options.ca]  CA for an https node
   */
  constructor({
    url, adminKey, timeout = 5000, retryFor = 8000, maxSockets = 64, ca,
  } = {}) {
    if (!url) throw new TypeError('keymesh: url is required');
    if (!adminKey) throw new TypeError('keymesh: adminKey is required');
    this.base = new URL(url);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new TypeError(`keymesh: url must be http or https, not ${this.base.protocol}`);
    }
    this.transport = this.base.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({
      keepAlive: true, maxSockets, ...(ca ? { ca } : {}),
    });
    this.authorization = `Bearer ${adminKey}`;
    this.timeout = timeout;
    this.retryFor = retryFor;
  }

  /** Closes the idle connections. */
  close() {
    this.agent.destroy();
  }

  /**
   * One call. Resolves {status, body} for every status in OK (an array),
   * rejects with a KeymeshError for any other.
   */
  async call(method, path, body, ok = [200]) {
    const deadline = Date.now() + this.retryFor;
    for (let attempt = 0; ; attempt += 1) {
      // eslint-disable-next-line no-await-in-loop
      const res = await this.send(method, path, body);
      if (ok.includes(res.status)) return res;
      if (res.status === 503 && Date.now() < deadline) {
        // The owners could not decide: nothing happened, try again.
        // eslint-disable-next-line no-await-in-loop
        await sleep(Math.min(500, 25 * 2 ** attempt) * (0.5 + Math.random()));
        continue; // eslint-disable-line no-continue
      }
      throw new KeymeshError(method, path, res.status, res.body);
    }
  }

  send(method, path, body) {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const once = (fresh) => new Promise((resolve, reject) => {
      const req = this.transport.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port,
        method,
        path,
        agent: fresh ? false : this.agent,
        timeout: this.timeout,
        headers: {
          authorization: this.authorization,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = { error: 'invalid_response', error_description: text.slice(0, 200) };
          }
          resolve({ status: res.statusCode, body: parsed });
        });
      });
      req.on('timeout', () => {
        req.destroy(Object.assign(new Error(`keymesh ${method} ${path}: no answer within ${this.timeout} ms`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (err) => {
        err.staleConnection = staleConnection(err, req);
        reject(err);
      });
      req.end(payload);
    });
    return once(false).catch((err) => {
      if (err.staleConnection) return once(true);
      throw err;
    });
  }
}

/** Percent-encodes one path segment. */
export const segment = (text) => encodeURIComponent(String(text));
