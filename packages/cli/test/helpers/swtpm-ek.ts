/**
 * A real swtpm manufactured like a vendor's TPM: `swtpm_setup --create-ek-cert` writes an RSA 2048
 * EK (persistent 0x81010001) and its certificate (NV 0x01c00002), issued by swtpm's local CA in a
 * private folder — the test's "TPM vendor": root CA → issuer CA → EK certificate.
 *
 * Invariants:
 * - Everything runs by async spawn (tests host a hub in the same process) and is bounded in time.
 * - The vendor CA, TPM state and ports are private to this instance; `stop()` kills only the
 *   swtpm this helper started (by pid) and removes its folder.
 * - Missing tools fail with the install command, never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kill, swtpmPort } from './tpm.js';

export interface EkSwtpm {
  readonly tcti: string;
  /** The vendor root (swtpm local root CA), PEM. */
  readonly vendorRootPem: string;
  /** The issuing CA between the root and the EK certificate, PEM. */
  readonly issuerPem: string;
  /** Runs one tpm2-tools command against this TPM (async); resolves stdout. */
  tool(name: string, args: readonly string[]): Promise<Buffer>;
  stop(): Promise<void>;
}

const TIMEOUT_MS = 30_000;

export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err.slice(0, 400)}`));
    });
  });
}

async function manufacture(dir: string): Promise<void> {
  for (const path of ['/usr/bin/swtpm', '/usr/bin/swtpm_setup', '/usr/bin/swtpm_localca', '/usr/bin/tpm2_createak']) {
    if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/install-test-deps.sh (swtpm, swtpm-tools, tpm2-tools)`);
  }
  const ca = join(dir, 'vendor-ca');
  await mkdir(ca);
  await mkdir(join(dir, 'state'));
  await writeFile(join(dir, 'localca.conf'), `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
  await writeFile(join(dir, 'localca.options'), '--platform-manufacturer fleetkey-test\n--platform-version 2.1\n--platform-model swtpm\n');
  await writeFile(join(dir, 'setup.conf'), `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/localca.conf\ncreate_certs_tool_options = ${dir}/localca.options\nactive_pcr_banks = sha256\n`);
  await run('/usr/bin/swtpm_setup', ['--tpm2', '--tpmstate', join(dir, 'state'), '--create-ek-cert', '--lock-nvram', '--config', join(dir, 'setup.conf'), '--overwrite']);
}

async function ready(tcti: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 50 && child.exitCode === null; i++) {
    if (await run('/usr/bin/tpm2_getcap', ['properties-fixed'], { ...process.env, TPM2TOOLS_TCTI: tcti }).then(() => true, () => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** A manufactured swtpm with its own vendor CA; three attempts at free ports. */
export async function startEkSwtpm(): Promise<EkSwtpm> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-ek-swtpm-'));
  await manufacture(dir);
  const vendorRootPem = await readFile(join(dir, 'vendor-ca', 'swtpm-localca-rootca-cert.pem'), 'utf8');
  const issuerPem = await readFile(join(dir, 'vendor-ca', 'issuercert.pem'), 'utf8');
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await swtpmPort();
    const child = spawn('/usr/bin/swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${join(dir, 'state')}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-300); });
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    if (await ready(tcti, child)) {
      const tool = async (name: string, args: readonly string[]): Promise<Buffer> => {
        try {
          return await run(`/usr/bin/${name}`, args, { ...process.env, TPM2TOOLS_TCTI: tcti });
        } finally {
          await run('/usr/bin/tpm2_flushcontext', ['-t'], { ...process.env, TPM2TOOLS_TCTI: tcti }).catch(() => undefined);
        }
      };
      const stop = async (): Promise<void> => {
        await kill(child);
        await rm(dir, { recursive: true, force: true });
      };
      return { tcti, vendorRootPem, issuerPem, tool, stop };
    }
    // Wait for the exit: a dying swtpm still holds the state folder's lock, which the next
    // attempt reuses (one failed attempt used to make the retries fail as well).
    await kill(child);
    failures.push(stderr.trim() || `exit ${String(child.exitCode ?? child.signalCode)}`);
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`swtpm did not start (ports busy?): ${failures.join(' | ')}`);
}
