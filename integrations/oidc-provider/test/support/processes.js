// Real processes on loopback for the tests: keymesh nodes (one, or a
// genclust cluster with mutual TLS), oidc-provider replicas, nginx. Each is
// stopped by pid when its test ends (and at exit, whatever happened).
import { spawn, spawnSync } from 'node:child_process';
import {
  mkdtempSync, readFileSync, writeFileSync, rmSync, openSync, existsSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../../..');

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

export function keymeshBinary() {
  const bin = process.env.KEYMESH_BIN ?? path.join(repoRoot, 'build/keymesh');
  if (!existsSync(bin)) throw new Error(`no keymesh binary at ${bin} (build it, or set KEYMESH_BIN)`);
  return bin;
}

export function tempDir(prefix = 'keymesh-op-') {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name) => path.join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** A running process with its log file. */
export class Proc {
  constructor(argv, { env = {}, log, cwd } = {}) {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYMESH_')));
    const fd = openSync(log, 'a');
    this.log = log;
    this.child = spawn(argv[0], argv.slice(1), {
      env: { ...clean, ...env }, stdio: ['ignore', fd, fd], cwd,
    });
    this.pid = this.child.pid;
    // A binary that cannot be started fails the test at once, naming it.
    this.spawnError = undefined;
    this.child.on('error', (err) => { this.spawnError = err; });
    this.exited = new Promise((resolve) => { this.child.on('exit', (code, signal) => resolve({ code, signal })); });
    live.add(this.child);
    this.child.on('exit', () => live.delete(this.child));
  }

  text() {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8') : '';
  }

  /** The first group of PATTERN once the log has it (within MS). */
  async waitForLog(pattern, ms = 20000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.spawnError) throw new Error(`cannot run ${this.child.spawnfile}: ${this.spawnError.message}`);
      const m = this.text().match(pattern);
      if (m) return m[1] ?? m[0];
      if (this.child.exitCode !== null) break;
      // eslint-disable-next-line no-await-in-loop
      await sleep(50);
    }
    throw new Error(`${path.basename(this.log)}: no ${pattern} within ${ms} ms:\n${this.text().slice(-3000)}`);
  }

  async stop(signal = 'SIGTERM') {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try { process.kill(this.pid, signal); } catch { return; }
    const timer = setTimeout(() => { try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

const adminKeyIn = (file) => readFileSync(file, 'utf8').trim().split('\n').pop().trim();

/** One keymesh node on SQLite in DIR, on a free port. */
export async function startNode(dir, env = {}) {
  const proc = new Proc([keymeshBinary(), 'serve'], {
    env: {
      KEYMESH_HTTP_LISTEN: '127.0.0.1:0',
      KEYMESH_NODE_DATA_DIR: path.join(dir, 'data'),
      KEYMESH_LOGOUT_ALLOW_PRIVATE_ADDRESSES: 'true',
      ...env,
    },
    log: path.join(dir, 'node.log'),
  });
  const port = await proc.waitForLog(/ready: http:\/\/127\.0\.0\.1:(\d+)/);
  return {
    proc, url: `http://127.0.0.1:${port}`, adminKey: adminKeyIn(path.join(dir, 'data/admin.keys')),
  };
}

/** COUNT free loopback ports in a row. */
export async function freePorts(count) {
  for (let tries = 0; tries < 50; tries += 1) {
    // Below Linux's ephemeral ports (32768 and up), which outgoing
    // connections take at any moment: a port found free there can be gone
    // before the process that needs it listens.
    const base = 20000 + Math.floor(Math.random() * (32000 - 20000 - count));
    // eslint-disable-next-line no-await-in-loop
    const ok = await Promise.all(Array.from({ length: count }, (_, i) => portFree(base + i)));
    if (ok.every(Boolean)) return Array.from({ length: count }, (_, i) => base + i);
  }
  throw new Error('no free port range');
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A genclust cluster of SIZE nodes (mutual TLS) in DIR; start() each. */
export async function makeCluster(dir, size = 3, env = {}) {
  const ports = await freePorts(2 * size);
  const out = spawnSync(keymeshBinary(), [
    'genclust', '--nodes', String(size), '--out', path.join(dir, 'c'),
    '--http-port', String(ports[0]), '--cluster-port', String(ports[size]),
  ], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`genclust failed: ${out.stderr}${out.stdout}`);
  const runs = new Array(size + 1).fill(0);
  const nodes = new Array(size + 1);
  const cluster = {
    size,
    nodes,
    url: (i) => `http://127.0.0.1:${ports[i - 1]}`,
    adminKey: (i) => adminKeyIn(path.join(dir, `c/node-${i}/data/admin.keys`)),
    async start(i, extra = {}) {
      runs[i] += 1;
      nodes[i] = new Proc([keymeshBinary(), 'serve', '--config', path.join(dir, `c/node-${i}/keymesh.yaml`)], {
        env: {
          KEYMESH_CLUSTER_HEARTBEAT: '500ms',
          KEYMESH_CLUSTER_FAILURE_TIMEOUT: '2s',
          KEYMESH_LOGOUT_ALLOW_PRIVATE_ADDRESSES: 'true',
          ...env,
          ...extra,
        },
        log: path.join(dir, `node-${i}-${runs[i]}.log`),
      });
      // Ready when its readiness check says so (whatever the log level).
      const deadline = Date.now() + 20000;
      while (Date.now() < deadline && nodes[i].child.exitCode === null) {
        // eslint-disable-next-line no-await-in-loop
        const res = await fetch(`${cluster.url(i)}/healthz/ready`).catch(() => undefined);
        if (res?.status === 200) return;
        // eslint-disable-next-line no-await-in-loop
        await sleep(50);
      }
      throw new Error(`node ${i} did not get ready:\n${nodes[i].text().slice(-3000)}`);
    },
    /** Resolves once every running node sees every other one up. */
    async waitLinked(ms = 20000) {
      const running = [];
      for (let i = 1; i <= size; i += 1) if (nodes[i]) running.push(i);
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        // eslint-disable-next-line no-await-in-loop
        const views = await Promise.all(running.map(async (i) => {
          const res = await fetch(`${cluster.url(i)}/api/cluster`, {
            headers: { authorization: `Bearer ${cluster.adminKey(i)}` },
          }).catch(() => undefined);
          return res?.ok ? res.json() : undefined;
        }));
        // (a node's members are the others; itself is `self`)
        const linked = views.every((v, at) => v && running.every((j) => j === running[at]
          || v.members.some((m) => m.instance_id === `node-${j}` && m.state === 'up')));
        if (linked) return;
        // eslint-disable-next-line no-await-in-loop
        await sleep(100);
      }
      throw new Error(`the cluster did not link within ${ms} ms`);
    },
    async stopAll(signal = 'SIGKILL') {
      await Promise.all(nodes.filter(Boolean).map((n) => n.stop(signal)));
    },
  };
  return cluster;
}

/** nginx round-robin over UPSTREAMS (ports) on a free port, no affinity. */
export async function startNginx(dir, upstreams, port) {
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, `
# One process, no workers: stopping it by pid stops all of nginx (a
# killed master leaves its workers behind).
master_process off;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'nginx-error.log')} warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log ${path.join(dir, 'nginx-access.log')};
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  upstream op {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://op;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
      proxy_read_timeout 10s;
    }
  }
}
`);
  if (!existsSync('/usr/sbin/nginx')) throw new Error('nginx is missing (scripts/setup installs nginx-light)');
  const proc = new Proc(['/usr/sbin/nginx', '-c', conf, '-p', dir], { log: path.join(dir, 'nginx.out') });
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    // eslint-disable-next-line no-await-in-loop
    if (!(await portFree(port))) return { proc, port, url: `http://127.0.0.1:${port}` };
    if (proc.child.exitCode !== null || proc.spawnError) break;
    // eslint-disable-next-line no-await-in-loop
    await sleep(50);
  }
  throw new Error(`nginx did not start:\n${proc.text()}`);
}

/** A Redis server without persistence on a free port (the bench's peer). */
export async function startRedis(dir) {
  const [port] = await freePorts(1);
  const proc = new Proc(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { log: path.join(dir, 'redis.log') });
  await proc.waitForLog(/(Ready to accept connections)/);
  return { proc, url: `redis://127.0.0.1:${port}` };
}
