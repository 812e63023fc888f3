// A whole deployment on loopback: a 3-node keymesh cluster (mutual TLS,
// replication factor 2), one oidc-provider replica per node sharing one
// issuer, nginx round-robin in front (no affinity), and a relying party's
// back-channel logout receiver.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import {
  Proc, freePorts, makeCluster, repoRoot, startNginx, startRedis, tempDir,
} from './processes.js';

const exampleServer = path.join(repoRoot, 'integrations/oidc-provider/example/server.js');

/** Receives logout tokens (application/x-www-form-urlencoded POSTs). */
function startReceiver() {
  const tokens = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/bcl') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        tokens.push(form.get('logout_token'));
        res.writeHead(200).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, tokens, port: server.address().port }));
  });
}

/**
 * Starts everything. ADAPTER: 'keymesh', or 'memory' (oidc-provider's own
 * in-process store; no keymesh at all): the negative control; or 'redis'
 * (bench/redis_adapter.js on a local redis-server): the benchmark's peer.
 * REPLICAS:
 * how many oidc-provider processes nginx spreads over (1 to 3). KEYMESH_ENV:
 * more settings of the keymesh nodes.
 */
export async function deploy({ adapter = 'keymesh', replicas = 3, keymeshEnv = {} } = {}) {
  const tmp = tempDir('keymesh-op-e2e-');
  const [lbPort, ...opPorts] = await freePorts(4);
  const issuer = `http://127.0.0.1:${lbPort}`;
  const receiver = await startReceiver();
  const redirectUri = `http://127.0.0.1:${receiver.port}/cb`;
  // Two relying parties, both logged out over the back channel.
  const client = (id, grants) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [`http://127.0.0.1:${receiver.port}/bye`],
    grant_types: grants,
    response_types: ['code'],
    id_token_signed_response_alg: 'ES256',
    backchannel_logout_uri: `http://127.0.0.1:${receiver.port}/bcl`,
    backchannel_logout_session_required: true,
  });
  const clients = [
    client('rp1', ['authorization_code', 'refresh_token', 'client_credentials']),
    client('rp2', ['authorization_code', 'refresh_token']),
  ];
  writeFileSync(tmp.file('clients.json'), JSON.stringify(clients));
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  writeFileSync(tmp.file('jwks.json'), JSON.stringify({ keys: [{ ...key, kid: 'op-1', alg: 'ES256', use: 'sig' }] }));

  let cluster;
  let redis;
  let lb;
  const ops = [];
  // Everything started so far; also when starting fails half-way (a live
  // child would keep the test runner waiting for good).
  const stopAll = async () => {
    if (lb) await lb.proc.stop('SIGTERM');
    await Promise.all(ops.filter(Boolean).map((p) => p.stop('SIGKILL')));
    if (cluster) await cluster.stopAll('SIGKILL');
    if (redis) await redis.proc.stop('SIGKILL');
    receiver.server.close();
    if (!process.env.KEEP_TMP) tmp.remove();
  };
  try {
    if (adapter === 'keymesh') {
      // Secret rings rotate within seconds here (install lead 2 s), so that a
      // test can watch the replicas follow.
      cluster = await makeCluster(tmp.dir, 3, {
        KEYMESH_KEYS_ISSUER: issuer,
        KEYMESH_SECRETS_REFRESH_INTERVAL: '500ms',
        KEYMESH_SECRETS_INSTALL_LEAD: '2s',
        ...keymeshEnv,
      });
      await Promise.all([1, 2, 3].map((i) => cluster.start(i)));
      await cluster.waitLinked();
    }
    redis = adapter === 'redis' ? await startRedis(tmp.dir) : undefined;
    const startOp = async (i) => {
      const nodeArgs = process.env.OP_NODE_ARGS ? process.env.OP_NODE_ARGS.split(' ') : [];
      ops[i] = new Proc([process.execPath, ...nodeArgs, exampleServer], {
        env: {
          ISSUER: issuer,
          PORT: String(opPorts[i - 1]),
          OP_REPLICA: `op-${i}`,
          OP_ADAPTER: adapter,
          OP_CLIENTS_FILE: tmp.file('clients.json'),
          OP_SECRETS_REFRESH_MS: '300',
          OP_JWKS_FILE: tmp.file('jwks.json'),
          ...(cluster ? { KEYMESH_URL: cluster.url(i), KEYMESH_ADMIN_KEY: cluster.adminKey(i) } : {}),
          ...(redis ? { REDIS_URL: redis.url } : {}),
        },
        log: tmp.file(`op-${i}.log`),
      });
      await ops[i].waitForLog(/replica \S+ (ready)/);
    };
    const which = Array.from({ length: replicas }, (_, i) => i + 1);
    await Promise.all(which.map(startOp));
    lb = await startNginx(tmp.dir, opPorts.slice(0, replicas), lbPort);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    tmp,
    issuer,
    redirectUri,
    clients,
    receiver,
    cluster,
    ops,
    opUrl: (i) => `http://127.0.0.1:${opPorts[i - 1]}`,
    lb,
    stop: stopAll,
  };
}
