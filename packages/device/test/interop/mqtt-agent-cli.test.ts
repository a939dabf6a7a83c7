/**
 * `fleetkey device run` (the CLI binary, spawned asynchronously) against mosquitto: stdin lines
 * become telemetry, sample metrics flow on an interval, commands are printed, SIGTERM stops it
 * cleanly after flushing, and a revoked device exits with DEVICE_REVOKED's exit code 4.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { brokerOptions, makeCrl, makeWorld, Watcher, type World } from '../helpers/mosquitto-fixture.js';

const FLEETKEY = fileURLToPath(new URL('../../../../cli/bin/fleetkey.js', import.meta.url));
let world: World;
let broker: Mosquitto;
let watcher: Watcher;

before(async () => {
  world = await makeWorld(3);
  broker = await startMosquitto(brokerOptions(world, 'agent', { crlPath: makeCrl(world, 'agent-revoked', [world.devices[2]!.certPath]) }));
  watcher = await Watcher.start(world, broker.port);
});
after(async () => {
  await watcher.close();
  await broker.kill();
});

interface Run { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> }

function agent(index: number, extra: string[]): Run {
  const child = spawn(process.execPath, [FLEETKEY, 'device', 'run', '--state-dir', world.devices[index]!.stateDir, '--hub-mqtt', `127.0.0.1:${broker.port}`, ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // bounded
  void exit.then(() => clearTimeout(timer));
  return { child, stdout: () => out, stderr: () => err, exit };
}

describe('fleetkey device run', () => {
  test('--stdin: one message per line, exits 0 after EOF with everything acknowledged', async () => {
    const id = world.devices[0]!.deviceId;
    const run = agent(0, ['--stdin']);
    run.child.stdin!.end('{"line":1}\n{"line":2}\n\nplain text\n');
    assert.equal(await run.exit, 0, run.stderr());
    await watcher.waitFor(() => watcher.received.filter((r) => r.topic === `devices/${id}/telemetry`).length >= 3);
    const bodies = watcher.received.filter((r) => r.topic === `devices/${id}/telemetry`).map((r) => r.body);
    assert.deepEqual(bodies, ['{"line":1}', '{"line":2}', 'plain text'], 'empty lines are skipped');
  });

  test('--interval: sample metrics as JSON, commands printed, SIGTERM stops cleanly with exit 0', async () => {
    const id = world.devices[1]!.deviceId;
    const run = agent(1, ['--interval', '200ms']);
    await watcher.waitFor(() => watcher.received.some((r) => r.topic === `devices/${id}/telemetry`));
    const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '--cafile', world.pki.root.certPath,
      '--cert', world.watcher.certPath, '--key', world.watcher.keyPath, '-q', '1', '-i', 'agent-pub',
      '-t', `devices/${id}/commands/reboot`, '-m', 'now'], { stdio: 'ignore' });
    assert.equal(await new Promise((resolve) => pub.once('exit', resolve)), 0);
    const until = Date.now() + 5000;
    while (!run.stdout().includes('command reboot now') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.match(run.stdout(), /^command reboot now$/m);
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 0, run.stderr());
    const sample = JSON.parse(watcher.received.find((r) => r.topic === `devices/${id}/telemetry`)!.body) as Record<string, unknown>;
    assert.equal(typeof sample.uptimeSeconds, 'number');
    assert.equal((sample.loadAverage as unknown[]).length, 3);
    assert.equal(typeof (sample.memory as Record<string, unknown>).freeBytes, 'number');
  });

  test('a revoked device exits with code 4 and `error DEVICE_REVOKED` on stderr', async () => {
    const run = agent(2, ['--interval', '1s']);
    assert.equal(await run.exit, 4);
    assert.match(run.stderr(), /^error DEVICE_REVOKED: /m);
  });
});
