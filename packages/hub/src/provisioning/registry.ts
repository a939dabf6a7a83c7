/** The explicit list of provisioning methods: one line per method. */
import { FleetkeyError } from '@fleetkey/protocol';
import type { Grant } from '../ca/grant.js';
import type { EnrollmentRequest, ProvisioningMethod } from './method.js';

export class ProvisioningRegistry {
  readonly #methods: readonly ProvisioningMethod[];

  constructor(methods: readonly ProvisioningMethod[]) {
    const names = new Set(methods.map((m) => m.name));
    if (names.size !== methods.length) throw new Error('duplicate provisioning method name');
    this.#methods = methods;
  }

  get names(): string[] {
    return this.#methods.map((m) => m.name);
  }

  authorize(request: EnrollmentRequest): Promise<Grant> {
    const method = this.#methods.find((m) => m.accepts(request));
    if (method === undefined) {
      const code = request.operation === 'simplereenroll' ? 'CERT_REQUIRED' : 'AUTH_REQUIRED';
      return Promise.reject(new FleetkeyError(code));
    }
    return method.authorize(request);
  }
}
