/** HTTPS JSON calls to a hub for the CLI interop tests, trusting only the given root. */
import { request } from 'node:https';

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** An HTTPS JSON call to the hub, trusting only `ca`. */
export function apiCall(base: string, ca: string, method: string, path: string, body?: unknown, token?: string): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(`${base}${path}`, {
      method, ca, checkServerIdentity: () => undefined, agent: false,
      headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}
