// The one MQTT 3.1.1 client harness of bench:mqtt, used unchanged against both brokers:
// raw node:tls + hand-built packets (no MQTT.js per-message overhead in the load generator).
// Each device's client TLS context is built once (`tls.createSecureContext`) and reused for every
// connection; no TLS session is resumed, so every connection is a full mutual-TLS handshake.
//
// Invariants: every wait is bounded by a timer; every socket is destroyed on error/timeout;
// packets are framed per MQTT 3.1.1 §2.2 (fixed header, Remaining Length varint §2.2.3).
import { connect as tlsConnect, createSecureContext } from 'node:tls';

const HOST = '127.0.0.1';

export function secureContextFor(device, rootCertPem) {
  return createSecureContext({ key: device.keyPem, cert: device.certPem, ca: rootCertPem });
}

function remainingLength(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const utf8 = (s) => { const b = Buffer.from(s, 'utf8'); const l = Buffer.alloc(2); l.writeUInt16BE(b.length); return Buffer.concat([l, b]); };

/** CONNECT, protocol level 4, CleanSession 1, no username/password (§3.1). */
export function connectPacket(clientId, keepAliveS = 300) {
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(keepAliveS);
  const body = Buffer.concat([utf8('MQTT'), Buffer.from([4, 0x02]), ka, utf8(clientId)]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

export const DISCONNECT = Buffer.from([0xe0, 0x00]); // §3.14

/** A QoS 1 PUBLISH template (§3.3): packet id at `idOffset`, a 12-digit counter at `seqOffset`. */
export function publishTemplate(topic, payloadSize = 96) {
  const t = utf8(topic);
  const payload = Buffer.alloc(payloadSize, 0x20);
  payload.write('{"seq":000000000000,"v":', 0, 'latin1');
  payload.write('}', payloadSize - 1, 'latin1');
  const variable = t.length + 2;
  const rl = remainingLength(variable + payload.length);
  const buf = Buffer.concat([Buffer.from([0x32]), rl, t, Buffer.alloc(2), payload]);
  return { buf, idOffset: 1 + rl.length + t.length, seqOffset: 1 + rl.length + variable + 7 };
}

/** Splits a byte stream into MQTT packets: calls onPacket(type, body). */
export function framer(onPacket) {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    for (;;) {
      if (pending.length - off < 2) break;
      let len = 0, mul = 1, i = off + 1, done = false;
      for (; i < pending.length && i < off + 5; i++) {
        const b = pending[i];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { done = true; i++; break; }
      }
      if (!done || pending.length - i < len) break;
      onPacket(pending[off] >> 4, pending.subarray(i, i + len));
      off = i + len;
    }
    pending = off === pending.length ? Buffer.alloc(0) : pending.subarray(off);
  };
}

/**
 * Opens an mTLS connection and completes CONNECT/CONNACK. Resolves {socket, onPacket} with
 * CONNACK return code 0, rejects otherwise or after `timeoutMs`. `onPacket` may be replaced.
 */
export function openSession({ port, secureContext, clientId, timeoutMs = 10_000 }) {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: HOST, port, secureContext, checkServerIdentity: () => undefined });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('connect timeout')); }, timeoutMs);
    const session = { socket, onPacket: undefined };
    let connacked = false;
    socket.on('data', framer((type, body) => {
      if (!connacked) {
        clearTimeout(timer);
        connacked = true;
        if (type === 2 && body[1] === 0) resolve(session);
        else { socket.destroy(); reject(new Error(`CONNACK type ${type} rc ${body[1]}`)); }
        return;
      }
      session.onPacket?.(type, body);
    }));
    socket.on('secureConnect', () => socket.write(connectPacket(clientId)));
    socket.on('error', (e) => { clearTimeout(timer); if (!connacked) reject(e); });
    socket.on('close', () => { clearTimeout(timer); if (!connacked) reject(new Error('closed before CONNACK')); });
  });
}

/** DISCONNECT, then wait (bounded) until the broker closed the socket. */
export function closeSession(session, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const { socket } = session;
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => { socket.destroy(); resolve(); }, timeoutMs);
    socket.once('close', () => { clearTimeout(timer); resolve(); });
    socket.end(DISCONNECT);
  });
}

/**
 * QoS 1 pipelined publisher on an open session: keeps `window` PUBLISHes unacknowledged until
 * `endAt` (performance.now() ms), then waits (bounded) for the outstanding PUBACKs.
 * Resolves {sent, acked, error}.
 */
export function publishLoop(session, { topic, window, endAt, drainMs = 10_000 }) {
  return new Promise((resolve) => {
    const { socket } = session;
    const { buf, idOffset, seqOffset } = publishTemplate(topic);
    let sent = 0, acked = 0, nextId = 1, finished = false, drainTimer;
    const finish = (error) => {
      if (finished) return;
      finished = true;
      clearTimeout(drainTimer);
      resolve({ sent, acked, error });
    };
    const sendOne = () => {
      const p = Buffer.from(buf);
      p.writeUInt16BE(nextId, idOffset);
      nextId = nextId === 65535 ? 1 : nextId + 1;
      p.write(String(sent).padStart(12, '0'), seqOffset, 'latin1');
      sent++;
      socket.write(p);
    };
    const fill = () => {
      socket.cork();
      while (sent - acked < window && performance.now() < endAt) sendOne();
      socket.uncork();
      if (performance.now() >= endAt && drainTimer === undefined) drainTimer = setTimeout(() => finish('drain timeout'), drainMs);
      if (sent === acked && performance.now() >= endAt) finish();
    };
    session.onPacket = (type) => {
      if (type !== 4) return; // PUBACK §3.4
      acked++;
      if (acked === sent || sent - acked < window / 2 || performance.now() >= endAt) fill();
    };
    socket.on('close', () => finish(sent === acked ? undefined : 'closed by broker'));
    fill();
  });
}
