// Fetches the pinned Clerk browser scripts (pins.json) from the npm registry with the npm
// client, checks each tarball's sha512 against the pinned integrity, and unpacks it as
//
//   npm/<name>@<version>/{package.json, LICENSE, dist/…}
//
// beside this file: the same path a browser asks latchkey for (/npm/@clerk/clerk-js@5.128.0/
// dist/clerk.browser.js), so the server maps a request onto a file by its path, and the major
// tag (@5) onto the one folder of that major. Nothing is fetched at run time; run this once
// (again after a bump):
//
//   node interop/clerk-assets/fetch.mjs [--out DIR]
//
// Exits non-zero, leaving no partial folder, if npm fails or a checksum differs.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, renameSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outArg = process.argv.indexOf('--out');
const out = resolve(outArg > 0 ? process.argv[outArg + 1] : join(here, 'npm'));
const pins = JSON.parse(readFileSync(join(here, 'pins.json'), 'utf8')).packages;

for (const pin of pins) {
  const target = join(out, `${pin.name}@${pin.version}`);
  const stamp = join(target, '.integrity');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === pin.integrity) {
    console.log(`${pin.name}@${pin.version}: present`);
    continue;
  }
  const work = mkdtempSync(join(tmpdir(), 'clerk-assets-'));
  try {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', `${pin.name}@${pin.version}`, '--json', '--silent', '--pack-destination', work], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    )[0];
    const tarball = join(work, packed.filename);
    const digest = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64');
    if (digest !== pin.integrity) {
      throw new Error(`${pin.name}@${pin.version}: the tarball's sha512 is ${digest}, pins.json says ${pin.integrity}`);
    }
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked, '--no-same-owner', '--no-same-permissions'], { stdio: 'inherit' });
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8'));
    if (manifest.name !== pin.name || manifest.version !== pin.version || manifest.license !== pin.license) {
      throw new Error(`${pin.name}@${pin.version}: the tarball holds ${manifest.name}@${manifest.version} (${manifest.license})`);
    }
    writeFileSync(join(unpacked, 'package', '.integrity'), pin.integrity);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(dirname(target), { recursive: true });
    renameSync(join(unpacked, 'package'), target);
    console.log(`${pin.name}@${pin.version}: fetched, ${digest.slice(0, 20)}… matches`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
