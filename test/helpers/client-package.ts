import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * The client library as its users get it (issue 18 item 1): `npm pack` of packages/client (whose
 * prepack builds dist/), installed from the tarball into a new folder outside the repository,
 * where nothing of the repository's node_modules can be found.
 */

export const CLIENT_DIR = resolve(import.meta.dirname, '../../packages/client');
const run = promisify(execFile);

/** npm prints its lifecycle scripts' output (the build's) before the JSON: the JSON is the array that starts a line. */
function packJson(stdout: string): { filename: string; files: { path: string }[] }[] {
  const start = /^\[$/m.exec(stdout);
  if (!start) throw new Error(`no JSON in npm pack's output:\n${stdout}`);
  return JSON.parse(stdout.slice(start.index));
}

/** `npm pack` of the client into `dest`: the tarball's path and the files it holds. */
export async function packClient(dest: string): Promise<{ tarball: string; files: string[] }> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: CLIENT_DIR, maxBuffer: 16 << 20 });
  const [packed] = packJson(stdout);
  return { tarball: join(dest, packed!.filename), files: packed!.files.map((f) => f.path).sort() };
}

/** `npm pack --dry-run` of the client as built now (no prepack: packClient built it): the files the tarball would hold. */
export async function dryRunFiles(): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: CLIENT_DIR, maxBuffer: 16 << 20 });
  return packJson(stdout)[0]!.files.map((f) => f.path).sort();
}

/** A new folder under the OS's temporary folder, an ES module package with nothing installed yet. */
export async function consumerFolder(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'field-app', version: '1.0.0', private: true, type: 'module' }));
  return dir;
}

/** `npm install <specs>` in `dir`, from the npm registry and the given tarballs only. */
export async function npmInstall(dir: string, specs: string[]): Promise<void> {
  await run('npm', ['install', '--no-audit', '--no-fund', ...specs], { cwd: dir, maxBuffer: 16 << 20 });
}
