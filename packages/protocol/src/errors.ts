/**
 * The one table of fleetkey error codes.
 *
 * Invariants:
 * - A code is stable forever once released; its public message may be reworded, never its meaning.
 * - The same code reaches the HTTP body, the MQTT CONNACK/log, the CLI's stderr and the audit log.
 * - Public messages never carry secrets, paths, SQL, stack traces or key identifiers. The precise
 *   cause travels in `FleetkeyError.cause` and is logged on the hub, never sent.
 * - Authentication failures of one kind share one public code (no oracle): the reason is logged.
 *
 * `docs/errors.md` lists this table; a test keeps the two in sync.
 */

export interface ErrorSpec {
  /** HTTP status used when the error reaches the API. */
  readonly status: number;
  /** Safe, generic text shown to clients. */
  readonly message: string;
  /** Process exit code used by the CLI. */
  readonly exit: number;
}

export const ERROR_TABLE = {
  // --- request shape ------------------------------------------------------------------------
  BAD_REQUEST: { status: 400, exit: 2, message: 'The request is malformed.' },
  VALIDATION_FAILED: { status: 400, exit: 2, message: 'A field of the request is missing or out of range.' },
  BODY_TOO_LARGE: { status: 413, exit: 2, message: 'The request body is larger than allowed.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, exit: 2, message: 'The request content type is not supported here.' },
  NOT_FOUND: { status: 404, exit: 3, message: 'No such resource.' },
  METHOD_NOT_ALLOWED: { status: 405, exit: 2, message: 'The method is not allowed on this resource.' },
  CONFLICT: { status: 409, exit: 3, message: 'The resource already exists.' },

  // --- authentication and authorisation ----------------------------------------------------
  AUTH_REQUIRED: { status: 401, exit: 4, message: 'Authentication is required.' },
  AUTH_FAILED: { status: 401, exit: 4, message: 'Authentication failed.' },
  AUTH_LOCKED: { status: 429, exit: 4, message: 'Too many failed attempts; try again later.' },
  FORBIDDEN: { status: 403, exit: 4, message: 'Not allowed.' },
  RATE_LIMITED: { status: 429, exit: 5, message: 'Too many requests; slow down.' },
  PASSWORD_POLICY: { status: 400, exit: 2, message: 'The password does not meet the password policy (at least 8 characters, not a common password).' },

  // --- enrollment ----------------------------------------------------------------------------
  CLAIM_TOKEN_INVALID: { status: 401, exit: 4, message: 'The claim token is not valid (unknown, expired, used up or revoked).' },
  CSR_MALFORMED: { status: 400, exit: 2, message: 'The certificate signing request is not valid DER/base64 PKCS#10.' },
  CSR_SIGNATURE_INVALID: { status: 400, exit: 2, message: 'The certificate signing request signature does not verify.' },
  KEY_NOT_ALLOWED: { status: 400, exit: 2, message: 'The public key type or size is not allowed (P-256, P-384, P-521, Ed25519, RSA >= 2048).' },
  SIGNATURE_ALGORITHM_NOT_ALLOWED: { status: 400, exit: 2, message: 'The signature algorithm is not allowed.' },
  KEY_ALREADY_ENROLLED: { status: 409, exit: 3, message: 'This public key already belongs to an enrolled device.' },
  CERT_REQUIRED: { status: 401, exit: 4, message: 'A client certificate is required.' },
  CERT_INVALID: { status: 401, exit: 4, message: 'The client certificate is not valid for this operation.' },
  ATTESTATION_REQUIRED: { status: 403, exit: 4, message: 'This organisation requires hardware attestation for new devices; a claim token alone does not enroll.' },
  ATTESTATION_FAILED: { status: 403, exit: 4, message: 'The hardware attestation was not accepted (chip certificate, proof, key attributes, channel binding or challenge).' },
  RENEWAL_NEEDS_CLAIM: { status: 403, exit: 4, message: 'This certificate can no longer be renewed (expired beyond the grace period, or renewal asked for a different key); the device needs a new claim.' },

  // --- batches and factory manifests (ADRs 0014, 0015) ------------------------------------
  BATCH_NOT_READY: { status: 409, exit: 3, message: 'The batch is not complete (still being issued, or cancelled).' },
  BUNDLE_GONE: { status: 410, exit: 3, message: 'The bundle of this batch was already downloaded as often as the policy allows.' },
  MANIFEST_INVALID: { status: 400, exit: 2, message: 'The factory manifest is malformed, its signature does not verify, or it was not issued under a factory kit of this hub.' },
  MANIFEST_OTHER_ORGANISATION: { status: 403, exit: 4, message: 'The factory manifest belongs to another organisation.' },
  MANIFEST_STALE: { status: 409, exit: 3, message: 'The factory manifest is older than, or diverges from, one already imported for its kit.' },
  MANIFEST_DUPLICATE: { status: 409, exit: 3, message: 'The factory manifest repeats a certificate serial or public key (within itself or of an enrolled device).' },
  FACTORY_LIMIT_EXCEEDED: { status: 403, exit: 4, message: "The factory kit's issuance window or count limit is exceeded." },

  // --- device side ---------------------------------------------------------------------------
  PIN_MISMATCH: { status: 502, exit: 6, message: 'The server did not prove the pinned hub identity; refusing to talk to it.' },
  HUB_UNREACHABLE: { status: 502, exit: 6, message: 'The hub could not be reached.' },
  HUB_PROTOCOL_ERROR: { status: 502, exit: 6, message: 'The hub answered with something that is not valid for the protocol.' },
  DEVICE_NOT_ENROLLED: { status: 409, exit: 3, message: 'This device has no identity yet; enroll it first.' },
  KEYSTORE_ERROR: { status: 500, exit: 7, message: 'The key store failed.' },
  TRUST_BUNDLE_REJECTED: { status: 400, exit: 6, message: 'The trust bundle does not follow from the trusted one (signatures, version, expiry, size or critical fields).' },
  DEVICE_REVOKED: { status: 403, exit: 4, message: 'The hub refused this device\'s certificate (revoked or no longer valid); it must be enrolled again.' },
  RENEWAL_PROOF_FAILED: { status: 502, exit: 6, message: 'The renewed certificate could not be proven on a fresh connection to the hub; the previous identity stays in use.' },

  // --- operator side -------------------------------------------------------------------------
  CONFIG_INVALID: { status: 500, exit: 2, message: 'The configuration is not valid.' },
  DATA_DIR_LOCKED: { status: 500, exit: 7, message: 'The data folder is in use by another hub process.' },
  AUDIT_CHAIN_BROKEN: { status: 500, exit: 8, message: 'The audit log hash chain does not verify.' },
  SECRET_UNREADABLE: { status: 500, exit: 7, message: 'A sealed secret could not be opened (wrong master key or tampered data).' },
  SHUTTING_DOWN: { status: 503, exit: 6, message: 'The hub is shutting down; retry on a new connection.' },
  STORAGE_UNAVAILABLE: { status: 503, exit: 7, message: 'Storage is unavailable; try again.' },
  INTERNAL: { status: 500, exit: 1, message: 'Internal error.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

/** Safe, client-visible details: field names, limits. Never secrets or causes. */
export type PublicDetails = Readonly<Record<string, string | number | boolean>>;

export interface FleetkeyErrorOptions {
  /** The precise reason, for logs only. */
  readonly cause?: unknown;
  /** Safe details that may be sent to the client. */
  readonly details?: PublicDetails;
}

/** The one error type of fleetkey. `message` is the public message from the table. */
export class FleetkeyError extends Error {
  readonly code: ErrorCode;
  readonly details: PublicDetails | undefined;

  constructor(code: ErrorCode, options: FleetkeyErrorOptions = {}) {
    super(ERROR_TABLE[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FleetkeyError';
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exit;
  }

  /** The wire form used in HTTP bodies and CLI `--json` output. */
  toJSON(): { code: ErrorCode; message: string; details?: PublicDetails } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function fail(code: ErrorCode, options?: FleetkeyErrorOptions): never {
  throw new FleetkeyError(code, options);
}

/** Wraps anything thrown into a FleetkeyError, keeping FleetkeyErrors as they are. */
export function toFleetkeyError(err: unknown): FleetkeyError {
  return err instanceof FleetkeyError ? err : new FleetkeyError('INTERNAL', { cause: err });
}
