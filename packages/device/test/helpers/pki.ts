/**
 * Test PKI made at test time with the system openssl (an independent implementation):
 * a hub root, hub TLS leaves (good, expired, not-yet-valid), a fake root with the real root's
 * subject name and its leaf, a device CA and a device certificate. Nothing is checked in.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { X509Certificate } from 'node:crypto';

export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly der: Buffer;
  readonly certPath: string;
  readonly keyPath: string;
}

const DAY_MS = 86_400_000;

export function openssl(args: readonly string[], cwd?: string): Buffer {
  return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

function opensslTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

function load(certPath: string, keyPath: string): TestCert {
  const certPem = readFileSync(certPath, 'utf8');
  return { certPem, keyPem: readFileSync(keyPath, 'utf8'), der: Buffer.from(new X509Certificate(certPem).raw), certPath, keyPath };
}

export interface IssueOptions {
  readonly name: string;
  readonly subject: string;
  readonly extensions: readonly string[];
  readonly notBefore?: number;
  readonly notAfter?: number;
}

/** A directory of openssl-made certificates; `issue` signs with `issuer` via `openssl ca`. */
export class OpensslPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'fleetkey-pki-'));

  selfSigned(name: string, subject: string): TestCert {
    const keyPath = this.#newKey(name);
    const certPath = join(this.dir, `${name}.crt`);
    openssl(['req', '-x509', '-new', '-key', keyPath, '-out', certPath, '-subj', subject, '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    return load(certPath, keyPath);
  }

  issue(issuer: TestCert, options: IssueOptions): TestCert {
    const keyPath = this.#newKey(options.name);
    const csrPath = join(this.dir, `${options.name}.csr`);
    openssl(['req', '-new', '-key', keyPath, '-out', csrPath, '-subj', options.subject]);
    return this.signCsr(issuer, csrPath, options, keyPath);
  }

  /** Signs a PEM CSR file as `issuer` (the hub's CA role in EST tests). */
  signCsr(issuer: TestCert, csrPath: string, options: IssueOptions, keyPath = ''): TestCert {
    const certPath = join(this.dir, `${options.name}.crt`);
    const config = join(this.dir, `${options.name}.cnf`);
    const database = join(this.dir, `${options.name}.index`);
    writeFileSync(database, '');
    writeFileSync(config, [
      '[ca]', 'default_ca = d', '[d]', `database = ${database}`, `new_certs_dir = ${this.dir}`,
      'default_md = sha256', 'policy = p', 'unique_subject = no', 'rand_serial = yes', 'copy_extensions = none',
      '[p]', 'commonName = supplied', '[ext]', ...options.extensions, '',
    ].join('\n'));
    const now = Date.now();
    openssl(['ca', '-batch', '-notext', '-config', config, '-cert', issuer.certPath, '-keyfile', issuer.keyPath,
      '-in', csrPath, '-out', certPath, '-extensions', 'ext', '-subj', options.subject,
      '-startdate', opensslTime(options.notBefore ?? now - DAY_MS), '-enddate', opensslTime(options.notAfter ?? now + 30 * DAY_MS)]);
    return keyPath === '' ? { ...load(certPath, issuer.keyPath), keyPem: '', keyPath: '' } : load(certPath, keyPath);
  }

  #newKey(name: string): string {
    const keyPath = join(this.dir, `${name}.key`);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
    return keyPath;
  }
}

export const SERVER_LEAF_EXTENSIONS = ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth', 'subjectAltName = DNS:hub.test,IP:127.0.0.1'];
export const CLIENT_LEAF_EXTENSIONS = ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth'];
export const CA_EXTENSIONS = ['basicConstraints = critical,CA:TRUE,pathlen:0', 'keyUsage = critical,keyCertSign,cRLSign'];

/** The standard bad-certificate set for pin tests. */
export interface HubPki {
  readonly pki: OpensslPki;
  readonly root: TestCert;
  readonly hubLeaf: TestCert;
  readonly expiredLeaf: TestCert;
  readonly fakeRoot: TestCert;
  readonly fakeLeaf: TestCert;
  readonly deviceCa: TestCert;
  readonly deviceLeaf: TestCert;
  readonly otherRoot: TestCert;
}

export function makeHubPki(): HubPki {
  const pki = new OpensslPki();
  const root = pki.selfSigned('root', '/O=fleetkey test/CN=fleetkey hub root');
  const leaf = (issuer: TestCert, name: string, extra: Partial<IssueOptions> = {}): TestCert =>
    pki.issue(issuer, { name, subject: '/CN=hub.test', extensions: SERVER_LEAF_EXTENSIONS, ...extra });
  const fakeRoot = pki.selfSigned('fake-root', '/O=fleetkey test/CN=fleetkey hub root');
  const deviceCa = pki.issue(root, { name: 'device-ca', subject: '/CN=fleetkey device CA', extensions: CA_EXTENSIONS });
  return {
    pki,
    root,
    hubLeaf: leaf(root, 'hub-leaf'),
    expiredLeaf: leaf(root, 'expired-leaf', { notBefore: Date.UTC(2020, 0, 1), notAfter: Date.UTC(2020, 0, 2) }),
    fakeRoot,
    fakeLeaf: leaf(fakeRoot, 'fake-leaf'),
    deviceCa,
    deviceLeaf: pki.issue(deviceCa, { name: 'device-leaf', subject: '/CN=device-1', extensions: CLIENT_LEAF_EXTENSIONS }),
    otherRoot: pki.selfSigned('other-root', '/CN=some other root'),
  };
}
