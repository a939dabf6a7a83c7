/**
 * A real Mosquitto 2 broker for device MQTT tests: mutual TLS on 127.0.0.1, client certificates
 * from the test device CA required, identity (CN) as username, a per-device ACL like the hub's
 * topic rules, optional CRL. Started asynchronously (never spawnSync while a broker lives), killed
 * by pid; `kill()` is SIGKILL (a crash), `restart()` starts it again on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { connect as tcpConnect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { OpensslPki, TestCert } from './pki.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface MosquittoOptions {
  readonly pki: OpensslPki;
  /** Server certificate (serverAuth) and the chain sent after it (the hub root). */
  readonly serverCert: TestCert;
  readonly serverChain: readonly TestCert[];
  /** CAs that client certificates must chain to (device CA + root). */
  readonly clientCas: readonly TestCert[];
  /** A CRL (PEM file) of the device CA: revoked devices are refused at the handshake. */
  readonly crlPath?: string;
  /** Persistent sessions saved on every change (survive SIGKILL), for the durability tests. */
  readonly persistence?: boolean;
  readonly name: string;
}

export interface Mosquitto {
  readonly port: number;
  readonly pid: () => number | undefined;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  /** Counts TLS handshake attempts seen in the broker log ("New connection from"). */
  connectionsLogged(): Promise<number>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function writeConfig(options: MosquittoOptions, port: number): { config: string; log: string } {
  const dir = options.pki.dir;
  const file = (name: string, text: string): string => {
    const path = join(dir, `${options.name}-${name}`);
    writeFileSync(path, text);
    return path;
  };
  const acl = file('acl', ['pattern readwrite devices/%u/#', 'pattern read $fleetkey/trust', 'user watcher', 'topic read devices/#', 'topic write devices/#', ''].join('\n'));
  const log = join(dir, `${options.name}.log`);
  writeFileSync(log, '');
  const lines = [
    'user root', 'per_listener_settings false', `log_dest file ${log}`,
    ...(options.persistence === true
      ? ['persistence true', `persistence_location ${dir}/${options.name}-db/`, 'autosave_interval 1', 'autosave_on_changes true']
      : ['persistence false']), 'log_type all', 'connection_messages true',
    'allow_anonymous false', `acl_file ${acl}`,
    `listener ${port} 127.0.0.1`,
    `cafile ${file('client-cas.pem', options.clientCas.map((c) => c.certPem).join(''))}`,
    `certfile ${file('server-chain.pem', [options.serverCert, ...options.serverChain].map((c) => c.certPem).join(''))}`,
    `keyfile ${options.serverCert.keyPath}`,
    'require_certificate true', 'use_identity_as_username true',
    ...(options.crlPath === undefined ? [] : [`crlfile ${options.crlPath}`]),
    '',
  ];
  return { config: file('mosquitto.conf', lines.join('\n')), log };
}

async function waitForPort(port: number, child: ChildProcess, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('mosquitto did not start listening');
}

/** Starts mosquitto; pass `port` to reuse one (e.g. a broker that must be down at first). */
export async function startMosquitto(options: MosquittoOptions, port?: number, startNow = true): Promise<Mosquitto> {
  const chosen = port ?? (await freePort());
  const { config, log } = writeConfig(options, chosen);
  if (options.persistence === true) await mkdir(join(options.pki.dir, `${options.name}-db`), { recursive: true });
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const c = spawn(MOSQUITTO, ['-c', config], { stdio: 'ignore' });
    child = c;
    await waitForPort(chosen, c);
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    await exited;
  };
  if (startNow) await start();
  return {
    port: chosen,
    pid: () => child?.pid,
    kill,
    restart: async () => {
      await kill();
      await start();
    },
    connectionsLogged: async () => {
      return ((await readFile(log, 'utf8')).match(/New connection from/g) ?? []).length;
    },
  };
}
