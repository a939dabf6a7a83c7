/**
 * Moving live MQTT sessions off a retired root (issue 4, ADR 0026): when a rotation's overlap
 * ends (or a recovery drops a root), the hub no longer serves that root's TLS certificate for new
 * handshakes, and sessions whose handshake it served are closed so that devices reconnect under
 * the current root.
 *
 * Invariants:
 * - Which certificate a session was served is read from its own TLS socket
 *   (`getX509Certificate`, RFC 8446 §4.4.2: the server's Certificate message of that handshake),
 *   and `keep` is asked once per distinct served certificate (a fleet shares a few).
 * - Closes are spread uniformly at random over `spreadMs` (no thundering herd of handshakes);
 *   a session that ended meanwhile is left alone; pending closes are cancelled on broker close.
 * - A session with no readable served certificate is kept (it cannot be classified, and a
 *   restart or its own reconnect moves it anyway).
 */
import { randomInt, type X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Client } from 'aedes';
import type { Logger } from 'pino';

export class SessionMoves {
  readonly #logger: Logger;
  readonly #pending = new Set<NodeJS.Timeout>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Schedules the close of every client whose served certificate `keep` refuses; returns how many. */
  schedule(clients: readonly Client[], keep: (served: X509Certificate) => boolean, spreadMs: number): number {
    const verdicts = new Map<string, boolean>();
    let scheduled = 0;
    for (const client of clients) {
      const served = servedCertificate(client);
      if (served === undefined) continue;
      const fingerprint = served.fingerprint256;
      let kept = verdicts.get(fingerprint);
      if (kept === undefined) {
        kept = keep(served);
        verdicts.set(fingerprint, kept);
      }
      if (kept) continue;
      this.#closeLater(client, spreadMs > 0 ? randomInt(spreadMs) : 0);
      scheduled++;
    }
    if (scheduled > 0) this.#logger.info({ sessions: scheduled, spreadMs }, 'moving MQTT sessions off a retired root');
    return scheduled;
  }

  cancel(): void {
    for (const t of this.#pending) clearTimeout(t);
    this.#pending.clear();
  }

  #closeLater(client: Client, delayMs: number): void {
    const timer = setTimeout(() => {
      this.#pending.delete(timer);
      if (client.connected) client.close();
    }, delayMs);
    timer.unref();
    this.#pending.add(timer);
  }
}

function servedCertificate(client: Client): X509Certificate | undefined {
  try {
    return (client.conn as TLSSocket).getX509Certificate() ?? undefined;
  } catch {
    return undefined;
  }
}
