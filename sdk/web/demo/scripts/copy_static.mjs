// Copies the pages and the style sheet next to the compiled scripts: dist/ is the whole site
// (the SDK and @bufbuild/protobuf come from the paths in the pages' import map).
import { cpSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const demo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
cpSync(resolve(demo, "static"), resolve(demo, "dist"), { recursive: true });
