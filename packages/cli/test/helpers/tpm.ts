/**
 * A real TPM with a resource manager for the TPM TLS tests (ADR 0028): swtpm (libtpms) on
 * 127.0.0.1, a private D-Bus daemon on a unix socket in a temp folder, and tpm2-abrmd in
 * session mode in front of swtpm. Clients use the `tabrmd:` TCTI, as a device uses
 * `device:/dev/tpmrm0`.
 *
 * Invariants:
 * - Everything is started by async spawn (the test process hosts a hub) and stopped by pid,
 *   newest first; the temp folder is removed. Nothing listens beyond 127.0.0.1 and the socket.
 * - DBUS_SESSION_BUS_ADDRESS is set in process.env so every child (CLI, tpm2-tools, tpm2_ptool,
 *   libtpm2-pkcs11 inside the engine) reaches the same abrmd.
 * - A missing tool fails with the install command, never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ManagedTpm {
  readonly tcti: string;
  readonly dir: string;
  stop(): Promise<void>;
}

const TOOLS = ['/usr/bin/swtpm', '/usr/sbin/tpm2-abrmd', '/usr/bin/dbus-daemon', '/usr/bin/tpm2_ptool', '/usr/bin/tpm2_getcap'];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/**
 * A port P for swtpm whose P+1 (its control channel; the swtpm TCTI assumes P+1) no local TCP
 * socket holds, TIME_WAIT included: bind(0) hands out odd ports, so P+1 is even — the side the
 * kernel uses for outgoing connections, thousands of which linger in TIME_WAIT after a busy run,
 * and swtpm binds without SO_REUSEADDR ("Address already in use").
 */
export async function swtpmPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (!localTcpPorts().has(port + 1)) return port;
  }
  throw new Error('no port P with P+1 unused found for swtpm');
}

/** Local ports of every TCP socket of this host (/proc/net/tcp, tcp6), in any state. */
function localTcpPorts(): Set<number> {
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = existsSync(table) ? readFileSync(table, 'utf8').split('\n').slice(1) : [];
    for (const row of rows) {
      const local = row.trim().split(/\s+/)[1];
      if (local !== undefined) ports.add(Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}

function succeeds(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.on('error', () => { clearTimeout(timer); resolve(false); });
    child.on('close', (code) => { clearTimeout(timer); resolve(code === 0); });
  });
}

async function until(check: () => Promise<boolean>, alive: () => boolean): Promise<boolean> {
  for (let i = 0; i < 150 && alive(); i++) { // ≤ 15 s: the machine is shared and often loaded
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** SIGKILL by pid, resolved once the process has exited (at once if it already has). */
export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, 'SIGKILL');
  await exited;
}

const busConfig = (socket: string): string => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${socket}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
`;

/** swtpm on a free port pair (port, port+1 for control), retried: port+1 may be taken. */
async function startSwtpmProcess(dir: string, children: ChildProcess[]): Promise<{ port: number; swtpmTcti: string }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await swtpmPort();
    const swtpmTcti = `swtpm:host=127.0.0.1,port=${port}`;
    const swtpm = spawn('/usr/bin/swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'], { stdio: 'ignore' });
    children.push(swtpm);
    const direct = { ...process.env, TPM2TOOLS_TCTI: swtpmTcti };
    if (await until(() => succeeds('/usr/bin/tpm2_getcap', ['properties-fixed'], direct), () => swtpm.exitCode === null)) return { port, swtpmTcti };
    await kill(swtpm);
  }
  throw new Error('swtpm did not start (ports busy?)');
}

/**
 * swtpm + D-Bus + tpm2-abrmd; throws if any part does not come up within a few seconds.
 *
 * @example
 * const tpm = await startManagedTpm();
 * after(() => tpm.stop());
 * const keyStore = new TpmKeyStore({ directory, tcti: tpm.tcti });
 */
export async function startManagedTpm(): Promise<ManagedTpm> {
  for (const tool of TOOLS) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: run scripts/install-test-deps.sh (swtpm, tpm2-abrmd, dbus-daemon, libtpm2-pkcs11-tools)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-mtpm-'));
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const child of children.reverse()) await kill(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const { port, swtpmTcti } = await startSwtpmProcess(dir, children);
    const socket = join(dir, 'bus');
    await writeFile(join(dir, 'bus.conf'), busConfig(socket));
    children.push(spawn('/usr/bin/dbus-daemon', [`--config-file=${join(dir, 'bus.conf')}`, '--nofork', '--nopidfile'], { stdio: 'ignore' }));
    if (!(await until(async () => existsSync(socket), () => true))) throw new Error('dbus-daemon did not start');
    process.env.DBUS_SESSION_BUS_ADDRESS = `unix:path=${socket}`;
    const busName = `com.intel.tss2.Tabrmd.fk${process.pid}p${port}`;
    const abrmdArgs = ['--session', `--dbus-name=${busName}`, `--tcti=${swtpmTcti}`, '--flush-all', ...(process.getuid?.() === 0 ? ['--allow-root'] : [])];
    const abrmd = spawn('/usr/sbin/tpm2-abrmd', abrmdArgs, { stdio: 'ignore' });
    children.push(abrmd);
    const tcti = `tabrmd:bus_name=${busName},bus_type=session`;
    if (!(await until(() => succeeds('/usr/bin/tpm2_getcap', ['properties-fixed'], { ...process.env, TPM2TOOLS_TCTI: tcti }), () => abrmd.exitCode === null))) {
      throw new Error('tpm2-abrmd did not start');
    }
    return { tcti, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface P11KitServer {
  /** P11_KIT_SERVER_ADDRESS for p11-kit-client.so. */
  readonly address: string;
  stop(): Promise<void>;
}

/**
 * `p11-kit server` exporting the tpm2-pkcs11 token of `storeDir` on a unix socket: clients that
 * install the pkcs11 engine as their default for every algorithm (mosquitto_pub, openssl
 * -engine) reach the TPM through p11-kit-client.so, so libtss2-esys's own OpenSSL calls run in
 * the server process, away from that engine (ADR 0028).
 */
export async function startP11KitServer(tpm: ManagedTpm, storeDir: string): Promise<P11KitServer> {
  const socket = join(tpm.dir, `p11-${Date.now()}.sock`);
  const env = { ...process.env, TPM2_PKCS11_STORE: storeDir, TPM2_PKCS11_TCTI: tpm.tcti, TPM2_PKCS11_BACKEND: 'esysdb', TPM2_PKCS11_LOG_LEVEL: '0' };
  const child = spawn('/usr/bin/p11-kit', ['server', '-f', '-n', socket, '--provider', '/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1', 'pkcs11:token=fleetkey-tpm'], { env, stdio: 'ignore' });
  if (!(await until(async () => existsSync(socket), () => child.exitCode === null))) {
    await kill(child);
    throw new Error('p11-kit server did not start (Debian p11-kit)');
  }
  return { address: `unix:path=${socket}`, stop: () => kill(child) };
}
