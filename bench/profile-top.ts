/**
 * Prints the hottest frames of a V8 CPU profile (node --cpu-prof): the top 15 by self time, then
 * the top 15 of our own src/ frames by total time (the frame and everything it called). Reads the
 * largest .cpuprofile in the folder given (default .tmp/profile): the main thread's, not tsx's
 * loader thread's.
 *
 *   tsx bench/profile-top.ts [folder-or-file] [count]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const arg = process.argv[2] ?? '.tmp/profile';
const top = Number(process.argv[3] ?? 15);
const file = statSync(arg).isDirectory()
  ? readdirSync(arg)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(arg, f))
      .sort((a, b) => statSync(b).size - statSync(a).size)[0]
  : arg;
if (!file) throw new Error(`no .cpuprofile in ${arg}`);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const root = process.cwd();
const where = (url: string) => (url.startsWith('file://') ? relative(root, new URL(url).pathname) : url || '(native)');
// Lines are those of the code V8 ran (tsx's output), near the source's but not always the same.
const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url)}${n.callFrame.lineNumber > 0 ? `:${n.callFrame.lineNumber + 1}` : ''}`;

// Self time per node (µs): each sample's time delta goes to the node it was taken in.
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
for (const [id, us] of selfUs) {
  const node = byId.get(id)!;
  all += us;
  self.set(keyOf(node), (self.get(keyOf(node)) ?? 0) + us);
  // Total: once per frame on the stack, however often it recurses.
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) seen.add(keyOf(byId.get(n)!));
  for (const k of seen) total.set(k, (total.get(k) ?? 0) + us);
}

const idle = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);
const line = ([k, us]: [string, number]) => `  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / all).toFixed(1).padStart(5)}%  ${k}`;
const busy = [...self].filter(([k]) => !idle.has(k.split('  ')[0]!)).reduce((a, [, us]) => a + us, 0);
console.log(`${file}: ${(all / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy (not idle, program or GC; GC ${((self.get('(garbage collector)  (native)') ?? 0) / 1000).toFixed(0)} ms)`);
console.log(`\ntop ${top} frames by self time:`);
console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(line).join('\n'));
console.log(`\ntop ${top} src/ frames by total time:`);
console.log(
  [...total]
    .filter(([k]) => k.includes('  src/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(line)
    .join('\n'),
);
