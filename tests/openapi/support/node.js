// One real keymesh node on loopback for the live test: its own data
// directory, an admin key stored hashed (sha256:...) in its own key file,
// a port chosen below the ephemeral range, ready when /healthz/ready says
// so. Stopped by pid (and killed at exit whatever happened).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const live = new Set();
process.on('exit', () => {
  for (const pid of live) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free loopback port in 20000–32000 (Linux's ephemeral ports start at 32768). */
async function freePort() {
  for (let tries = 0; tries < 50; tries += 1) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await portFree(port)) return port; // eslint-disable-line no-await-in-loop
  }
  throw new Error('no free port in 20000-32000');
}

export function keymeshBinary() {
  const bin = process.env.KEYMESH_BIN;
  if (!bin) throw new Error('set KEYMESH_BIN to the keymesh binary (e.g. ../../build/keymesh)');
  if (!existsSync(bin)) throw new Error(`no keymesh binary at ${bin}`);
  return path.resolve(bin);
}

/**
 * Starts a node; resolves { url, adminKey, pid, stop(), log() }. ENV: more
 * KEYMESH_* settings.
 */
export async function startNode(env = {}) {
  const bin = keymeshBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keymesh-openapi-'));
  const adminKey = randomBytes(32).toString('base64url');
  const keysFile = path.join(dir, 'admin.keys');
  writeFileSync(keysFile, `# keymesh admin keys (openapi test)\nsha256:${createHash('sha256').update(adminKey).digest('hex')}\n`, { mode: 0o600 });
  mkdirSync(path.join(dir, 'data'));
  const logFile = path.join(dir, 'node.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYMESH_')));

  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort(); // eslint-disable-line no-await-in-loop
    const fd = openSync(logFile, 'a');
    const child = spawn(bin, ['serve'], {
      env: {
        ...clean,
        KEYMESH_HTTP_LISTEN: `127.0.0.1:${port}`,
        KEYMESH_NODE_DATA_DIR: path.join(dir, 'data'),
        KEYMESH_HTTP_ADMIN_KEYS_FILE: keysFile,
        ...env,
      },
      stdio: ['ignore', fd, fd],
    });
    let spawnError;
    child.on('error', (err) => { spawnError = err; });
    const exited = new Promise((resolve) => { child.on('exit', resolve); });
    live.add(child.pid);
    child.on('exit', () => live.delete(child.pid));
    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
        const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
        await exited;
        clearTimeout(timer);
      }
      if (!process.env.KEEP_TMP) rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && child.exitCode === null && !spawnError) {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${url}/healthz/ready`).catch(() => undefined);
      if (res?.status === 200) {
        return {
          url, adminKey, pid: child.pid, stop, log, dir,
        };
      }
      await sleep(50); // eslint-disable-line no-await-in-loop
    }
    if (spawnError) {
      await stop();
      throw new Error(`cannot run ${bin}: ${spawnError.message}`);
    }
    const lost = /address already in use|bind/i.test(log());
    if (child.exitCode === null) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      await exited; // eslint-disable-line no-await-in-loop
    }
    if (!lost) {
      const text = log();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the node did not get ready:\n${text.slice(-3000)}`);
    }
    // Someone took the port between the check and the bind: another one.
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error('the node could not bind a port in 3 attempts');
}
