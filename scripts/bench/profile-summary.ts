// `npx tsx scripts/bench/profile-summary.ts .bench/profiles/X.cpuprofile [N]`:
// the N functions with the most self time in a V8 CPU profile (from --cpu-prof),
// and the files that hold the most, so a profile can be read without a browser.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, top = "25"] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary <file.cpuprofile> [N]");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (const [i, id] of profile.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));

const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, us] of selfUs) {
  const frame = (byId.get(id) as ProfileNode).callFrame;
  const where = frame.url
    .replace(/^file:\/\//, "")
    .replace(/.*node_modules\//, "nm:")
    .replace(/.*\/main\//, "");
  const name = `${frame.functionName || "(anonymous)"}  ${where}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const pkg = where.startsWith("nm:")
    ? where
        .split("/")
        .slice(0, where.startsWith("nm:@") ? 2 : 1)
        .join("/")
    : where || frame.functionName;
  byFile.set(pkg, (byFile.get(pkg) ?? 0) + us);
}
const show = (map: Map<string, number>, n: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${name}`)
    .join("\n");
console.log(`total ${(total / 1e6).toFixed(2)} s sampled\n\nby function (self time):\n${show(byFunction, Number(top))}`);
console.log(`\nby package or file:\n${show(byFile, 15)}`);
