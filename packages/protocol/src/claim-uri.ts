/**
 * The claim URI, shown once to the owner and as a QR code: everything a device needs to enroll.
 *
 *   fleetkey://claim?v=1&hub=<https URL>&pin=<sha256//BASE64>&token=<claim token>
 *
 * It is not an HTTP URL, so no web server or proxy ever logs it; the device sends the token only
 * inside an HTTP Authorization header, after it has verified the hub by the pin.
 */
import { FleetkeyError } from './errors.js';

export interface ClaimUriParts {
  readonly hubUrl: string;
  readonly pin: string;
  readonly token: string;
}

export function formatClaimUri(parts: ClaimUriParts): string {
  const q = new URLSearchParams({ v: '1', hub: parts.hubUrl, pin: parts.pin, token: parts.token });
  return `fleetkey://claim?${q.toString()}`;
}

export function parseClaimUri(uri: string): ClaimUriParts {
  const prefix = 'fleetkey://claim?';
  if (!uri.startsWith(prefix) || uri.length > 2048) throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'claimUri' } });
  const q = new URLSearchParams(uri.slice(prefix.length));
  const hubUrl = q.get('hub');
  const pin = q.get('pin');
  const token = q.get('token');
  if (q.get('v') !== '1' || !hubUrl?.startsWith('https://') || !pin?.startsWith('sha256//') || !token) {
    throw new FleetkeyError('VALIDATION_FAILED', { details: { field: 'claimUri' } });
  }
  return { hubUrl, pin, token };
}
