// bench/oidc's driver: complete authorization-code flows per second (the
// authorization request, the login and consent interactions, the code
// redeemed at the token endpoint: 8 requests) through three oidc-provider
// replicas behind nginx round-robin, on keymesh (3-node cluster, mutual
// TLS, RF=2) and on Redis (the documented adapter shape, one local
// redis-server), one after the other in one run.
//
//   node bench/flows.js [SECONDS] [CONCURRENCY]
import { createHash, randomBytes } from 'node:crypto';

import { Browser } from '../test/support/browser.js';
import { deploy } from '../test/support/deployment.js';
import { redeemCode } from '../test/support/rp.js';

const seconds = Number(process.argv[2] ?? 20);
const concurrency = Number(process.argv[3] ?? 16);

async function flow(d) {
  const browser = new Browser(d.issuer);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = new URL('/auth', d.issuer);
  auth.search = new URLSearchParams({
    client_id: 'rp1',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: d.redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
  });
  const callback = await browser.authorize(auth.href, d.redirectUri, { login: `user${Math.floor(Math.random() * 1000)}` });
  const code = new URL(callback).searchParams.get('code');
  const res = await redeemCode(`${d.issuer}/token`, { code, redirectUri: d.redirectUri, verifier });
  const { body } = res;
  if (res.status !== 200 || !body.id_token) throw new Error(`token: ${res.status} ${JSON.stringify(body)}`);
}

async function measure(adapter) {
  // keymesh logs warnings only, as in bench/lib.sh (an audit line per
  // session is not what is measured).
  const d = await deploy({ adapter, keymeshEnv: { KEYMESH_LOG_LEVEL: 'warn' } });
  try {
    const run = async (ms) => {
      const latencies = [];
      let errors = 0;
      let firstError;
      const end = Date.now() + ms;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (Date.now() < end) {
          const t0 = process.hrtime.bigint();
          try {
            // eslint-disable-next-line no-await-in-loop
            await flow(d);
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          } catch (err) {
            errors += 1;
            firstError ??= err;
          }
        }
      }));
      latencies.sort((a, b) => a - b);
      const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
      return {
        flows: latencies.length, errors, firstError, rate: latencies.length / (ms / 1000), p50: at(0.5), p99: at(0.99),
      };
    };
    await run(3000); // warm-up: JIT, connections, keys
    return await run(seconds * 1000);
  } finally {
    await d.stop();
  }
}

const results = {};
for (const adapter of ['keymesh', 'redis']) {
  // eslint-disable-next-line no-await-in-loop
  results[adapter] = await measure(adapter);
  const r = results[adapter];
  console.log(`${adapter.padEnd(8)} ${r.rate.toFixed(1).padStart(7)} flows/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  (${r.flows} flows, ${r.errors} errors)`);
  if (r.firstError) console.log(`  first error: ${r.firstError.message}`);
}
console.log(`ratio keymesh/redis: ${(results.keymesh.rate / results.redis.rate).toFixed(2)}x (target >= 0.8x)`);
if (results.keymesh.errors || results.redis.errors) process.exitCode = 1;
