#!/usr/bin/env -S node --max-semi-space-size=64
// --max-semi-space-size=64 (MiB, V8's young generation; 16 by default): the hub keeps thousands of
// in-flight MQTT messages and requests alive across a group commit, and scavenges copy every one
// of them; a larger young generation copies them less often (ADR 0033). V8 reads it only at start.
import { main } from '../dist/src/main.js';

process.exitCode = await main(process.argv.slice(2));
