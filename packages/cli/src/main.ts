/**
 * `fleetkey`: hub operator commands, owner commands and the device agent. Command names and flags
 * are a public interface (README, docs/cli.md). Every failure prints `error CODE: message` on
 * stderr and exits with the code's exit status from the error table.
 */
import { FleetkeyError } from '@fleetkey/protocol';
import { auditCommand } from './commands/audit.js';
import { batchCommand } from './commands/batch.js';
import { factoryCommand } from './commands/factory.js';
import { deviceCommand } from './commands/device.js';
import { hubCommand } from './commands/hub.js';
import { ownerApiCommand } from './commands/owner-api.js';
import { attestationCommand } from './commands/attestation.js';
import { ownerCommand } from './commands/owner.js';
import { telemetryCommand } from './commands/telemetry.js';
import { defaultIo, reportError, type CliIo } from './io.js';

const USAGE = `usage: fleetkey <command>

hub operator:
  fleetkey hub start [--data-dir D] [--host H] [--api-port N] [--mqtt-port M] [--public-url U]
  fleetkey hub pin --data-dir D          print the hub pin (sha256//BASE64 of the root SPKI)
  fleetkey hub root-cert --data-dir D    print the hub root certificate (PEM)
  fleetkey hub trust show|history --data-dir D [--json]   the trust bundle and its versions
  fleetkey hub rotate-root --data-dir D [--overlap 30d]   new root, bundle N+1 signed by old and new
  fleetkey hub recover --data-dir D --recovery-key FILE [--new-recovery-key-out F]   drop a stolen root
  fleetkey owner add --data-dir D --org ORG --email E    (password on stdin)
  fleetkey audit verify --data-dir D

owner (talks to a running hub):
  fleetkey login --hub URL --pin PIN --email E [--totp CODE]   (password on stdin)
  fleetkey claim create [--ttl SECONDS] [--max-uses N] [--label L] [--json]
  fleetkey claim list [--json] | fleetkey claim revoke ID
  fleetkey devices list [--json]
  fleetkey devices revoke ID [--reason R] [--json]     R: unspecified|keyCompromise|affiliationChanged|superseded|cessationOfOperation
  fleetkey telemetry tail DEVICE_ID [--limit N] [--json]      live messages until Ctrl-C (or N of them)
  fleetkey telemetry export DEVICE_ID --format csv|jsonl [--since ISO] [--until ISO]
  fleetkey batch create --count N --mode device-keys|hub-keys [--key-alg p256] [--label L] [--csrs FILE] [--passphrase-stdin] [--wait]
  fleetkey batch status ID [--wait] | batch download ID [--out FILE] | batch revoke ID [--reason R] | batch import MANIFEST
  fleetkey factory init --org ORG --count N --valid-for 14d --kit FILE   (kit passphrase on stdin)

factory line (no network, no hub):
  fleetkey factory issue --kit FILE --state-dir D (--csrs FILE | --count N) --out DIR   (kit passphrase on stdin)
  fleetkey factory export --kit FILE --state-dir D --out MANIFEST   (kit passphrase on stdin)

attestation trust (owner, ADR 0027):
  fleetkey attestation roots list | add --kind tpm|se --file CA.pem [--label L] | delete ID
  fleetkey attestation chips list | add --sha256 HEX | --serial HEX | --manifest CERTS.pem | delete ID
  fleetkey attestation policy show | set --require-attestation true|false

device agent:
  fleetkey device enroll --hub URL --pin PIN --token T --state-dir D [--key-alg p256|p384|p521|ed25519]
  fleetkey device enroll … --keystore tpm[:TCTI] --attest tpm [--ek-chain PEM] | --keystore pkcs11:URI --attest se --se-label L --se-cert PEM
  fleetkey device renew --state-dir D | fleetkey device status --state-dir D
  fleetkey device run --state-dir D [--interval 5s] [--stdin] [--hub-mqtt host:port]
`;

export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'hub':
        return await hubCommand(rest, io);
      case 'owner':
        return await ownerCommand(rest, io);
      case 'audit':
        return await auditCommand(rest, io);
      case 'login':
      case 'claim':
      case 'devices':
        return await ownerApiCommand(command, rest, io);
      case 'attestation':
        return await attestationCommand(rest, io);
      case 'telemetry':
        return await telemetryCommand(rest, io);
      case 'batch':
        return await batchCommand(rest, io);
      case 'factory':
        return await factoryCommand(rest, io);
      case 'device':
        return await deviceCommand(rest, io);
      case 'help':
      case '--help':
      case '-h':
      case undefined:
        io.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new FleetkeyError('VALIDATION_FAILED', { details: { command } });
    }
  } catch (err) {
    return reportError(io, err, argv.includes('--json'));
  }
}
