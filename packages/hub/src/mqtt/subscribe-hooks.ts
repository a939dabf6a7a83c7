/**
 * Device SUBSCRIBE and delivery to devices: aedes' `authorizeSubscribe` and `authorizeForward`.
 *
 * Invariants:
 * - A filter the policy denies, or one beyond `maxSubscriptions` for this connection, gets the
 *   SUBACK failure return code 0x80 (MQTT 3.1.1 §3.9.3) and an audit record; the connection
 *   stays up and the other filters of the same SUBSCRIBE are decided on their own.
 * - SUBACK grants the requested QoS (aedes 1.2 takes the return code from the request, not from
 *   this hook); the hub publishes commands at QoS 1 and delivery uses the lower of the two
 *   [MQTT-3.8.4-6], so no QoS 2 flow ever starts (ADR 0012).
 * - Forwarding re-checks the topic against the receiving device (`canReceive`): even a
 *   subscription that slipped through could never deliver another device's messages.
 */
import type { AedesOptions, Client, Subscription } from 'aedes';
import { sourceOf, type BrokerContext } from './context.js';
import { canReceive, canSubscribe } from './topic-policy.js';

type SubscribeHooks = Required<Pick<AedesOptions, 'authorizeSubscribe' | 'authorizeForward'>>;

function subscribeRefusal(ctx: BrokerContext, client: Client, sub: Subscription): string | undefined {
  const session = ctx.sessions.session(client);
  if (session === undefined) return 'no authenticated session';
  const decision = canSubscribe(session.identity.deviceId, sub.topic);
  if (!decision.allowed) return decision.reason;
  if (!session.filters.has(sub.topic) && session.filters.size >= ctx.limits.maxSubscriptions) return 'too many subscriptions';
  return undefined;
}

export function subscribeHooks(ctx: BrokerContext): SubscribeHooks {
  return {
    authorizeSubscribe: (client, sub, callback) => {
      const reason = subscribeRefusal(ctx, client, sub);
      if (reason !== undefined) {
        const identity = ctx.sessions.session(client)?.identity;
        void ctx.audit({
          type: 'subscribe.denied', result: 'failure', code: 'FORBIDDEN', deviceId: identity?.deviceId, tenantId: identity?.tenantId,
          source: sourceOf(client), details: { reason, filter: sub.topic.slice(0, 128) },
        });
        callback(null, null); // SUBACK 0x80
        return;
      }
      ctx.sessions.session(client)?.filters.add(sub.topic);
      callback(null, sub);
    },
    authorizeForward: (client, packet) => {
      const session = ctx.sessions.session(client);
      return session !== undefined && canReceive(session.identity.deviceId, packet.topic) ? packet : null;
    },
  };
}
