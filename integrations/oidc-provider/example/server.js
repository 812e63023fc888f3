// One replica of an OpenID Provider (node oidc-provider 8.x) on keymesh.
// Run as many as you like, each next to its keymesh node, behind any load
// balancer: they share every model, cookie key, DPoP nonce key and replay
// registry through keymesh, and keymesh sends their back-channel logouts.
//
//   KEYMESH_URL=http://127.0.0.1:8080 KEYMESH_ADMIN_KEY=... \
//   ISSUER=https://op.example.com PORT=3000 node example/server.js
//
// Environment:
//   ISSUER             the public issuer URL (the same on every replica)
//   PORT               where this replica listens (127.0.0.1)
//   KEYMESH_URL        this replica's keymesh node
//   KEYMESH_ADMIN_KEY  a bearer key of that node's admin.keys
//   OP_JWKS_FILE       the OP's private signing keys (JWKS JSON), the same
//                      on every replica; absent: one EC key made at start
//                      (fine for a single replica only)
//   OP_CLIENTS_FILE    the static clients (a JSON array of client metadata)
//   OP_REPLICA         a name sent back in the X-Replica header
//   OP_SECRETS_REFRESH_MS  how often the secret rings are read again
//                      (default 10000; below keymesh's secrets.install_lead)
//   OP_ADAPTER         keymesh (default), memory (oidc-provider's own
//                      in-process store: replicas share nothing), or redis
//                      (bench/redis_adapter.js at REDIS_URL: the benchmark's
//                      peer; cookie and nonce keys then static)
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

import {
  Keymesh, attachKeymesh, dpopNonceSecret, keymeshAdapter,
} from '../index.js';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};

const issuer = env('ISSUER', 'http://127.0.0.1:3000');
const port = Number(env('PORT', '3000'));
const replica = env('OP_REPLICA', `op-${process.pid}`);
const adapterName = env('OP_ADAPTER', 'keymesh');
const useKeymesh = adapterName === 'keymesh';
const clients = process.env.OP_CLIENTS_FILE
  ? JSON.parse(readFileSync(process.env.OP_CLIENTS_FILE, 'utf8'))
  : [{
    client_id: 'example-rp',
    client_secret: 'example-secret',
    redirect_uris: ['http://127.0.0.1:8000/cb'],
  }];
const jwks = process.env.OP_JWKS_FILE
  ? JSON.parse(readFileSync(process.env.OP_JWKS_FILE, 'utf8'))
  : {
    keys: [{
      ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
      kid: 'op-es256', alg: 'ES256', use: 'sig',
    }],
  };

const km = useKeymesh
  ? new Keymesh({ url: env('KEYMESH_URL'), adminKey: env('KEYMESH_ADMIN_KEY') })
  : undefined;

const configuration = {
  ...(km ? { adapter: keymeshAdapter(km) } : {}),
  ...(adapterName === 'redis'
    ? { adapter: (await import('../bench/redis_adapter.js')).default(env('REDIS_URL')) }
    : {}),
  clients,
  jwks,
  // Replaced by keymesh's cookies ring at attach; a static list without it.
  cookies: { keys: [process.env.OP_COOKIE_KEY ?? 'a static key for the memory adapter only'] },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub }),
  }),
  claims: { openid: ['sub'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    pushedAuthorizationRequests: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
    dPoP: {
      enabled: true,
      // Every replica computes the same nonces (attach() follows the
      // ring's rotations).
      nonceSecret: km ? await dpopNonceSecret(km) : Buffer.alloc(32, 7),
      requireNonce: () => true,
    },
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    Grant: 14 * 24 * 3600,
    IdToken: 600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = true;
provider.use(async (ctx, next) => {
  ctx.set('X-Replica', replica);
  await next();
});
if (km) {
  await attachKeymesh(provider, km, {
    clients, refreshInterval: Number(process.env.OP_SECRETS_REFRESH_MS ?? 10000),
  });
}

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider replica ${replica} ready: http://127.0.0.1:${port} (issuer ${issuer}, adapter ${adapterName})`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
