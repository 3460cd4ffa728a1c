// Removes build output before a build, so that a renamed or deleted source (or test) leaves no
// stale compiled file behind to be run. Paths are relative to the package.
import { rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
for (const path of process.argv.slice(2))
  rmSync(resolve(root, path), { recursive: true, force: true });
