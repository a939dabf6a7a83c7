// HTTPS to the hub for bench/batch, trusting only its root: JSON calls and raw bundle bytes.
import { request } from 'node:https';

/** One request; resolves { status, text, bytes } (bounded by `timeoutMs`). */
export function api(base, ca, method, path, body, token, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(`${base}${path}`, {
      method, ca, checkServerIdentity: () => undefined, agent: false, timeout: timeoutMs,
      headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode, bytes, text: bytes.toString('utf8') });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}
