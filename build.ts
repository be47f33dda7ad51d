// Builds the single chasqui binary: dist/chasqui for this machine, or with --all for every
// supported platform (dist/chasqui-<os>-<arch>). ssh2's optional native addons stay external:
// they never load under Bun, and embedding them would unpack files into /tmp at every start.
import { spawnSync } from "node:child_process";

const TARGETS = ["bun-linux-x64", "bun-linux-arm64", "bun-darwin-x64", "bun-darwin-arm64"];
const all = process.argv.includes("--all");
const bun = process.execPath;

function build(target: string | null, outfile: string): void {
  const args = ["build", "--compile", "--minify", "--bytecode", "--format=esm", "--external", "*.node"];
  if (target) args.push(`--target=${target}`);
  args.push("src/main.ts", "--outfile", outfile);
  const r = spawnSync(bun, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build failed for ${target ?? "this machine"}`);
    process.exit(r.status ?? 1);
  }
}

build(null, "dist/chasqui");
if (all) for (const t of TARGETS) build(t, `dist/chasqui-${t.slice(4)}`);
