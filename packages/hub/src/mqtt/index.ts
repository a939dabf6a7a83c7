/**
 * The embedded MQTT broker (issue 3, ADR 0012): aedes on fleetkey's own mutual-TLS listener.
 * `startMqttBroker` is the entry point; `mqttLimitsOf` turns the frozen config into limits.
 */
import type { HubConfig } from '../config/load.js';
import type { MqttLimits } from './context.js';

export { startMqttBroker, type MqttBroker, type MqttBrokerOptions } from './broker.js';
export type { MqttLimits } from './context.js';
export type { MqttTlsMaterial } from './tls.js';

export function mqttLimitsOf(c: HubConfig): MqttLimits {
  return {
    maxPacketBytes: c.mqttMaxPacketBytes,
    maxQueuedPackets: c.mqttMaxQueuedPackets,
    maxInflight: c.mqttMaxInflight,
    maxSubscriptions: c.mqttMaxSubscriptions,
    connectTimeoutMs: c.mqttConnectTimeoutSeconds * 1000,
    keepAliveMaxSeconds: c.mqttKeepAliveMaxSeconds,
    rate: { perSecond: c.mqttRatePerSecond, burst: c.mqttRateBurst },
    // A device certificate never outlives this, so after it the store alone decides.
    revocationRetentionMs: c.deviceCertValidityDays * 86_400_000,
  };
}
