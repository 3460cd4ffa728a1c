// Generates src/gen/ from the wire contract (../../proto/im/v1/client.proto) with protoc and
// @bufbuild/protoc-gen-es, so that the TypeScript classes cannot drift from the proto: every
// build runs this first. protoc is the system one (Debian's protobuf-compiler, 3.21 works) or the
// one named by $PROTOC.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoRoot = resolve(root, "../../proto");
const out = join(root, "src/gen");
const plugin = join(root, "node_modules/.bin/protoc-gen-es");
const protoc = process.env.PROTOC ?? "protoc";

if (!existsSync(plugin)) {
  console.error(`generate: ${plugin} is missing; run npm install first`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
try {
  execFileSync(
    protoc,
    [
      `--plugin=protoc-gen-es=${plugin}`,
      `--es_out=${out}`,
      // .js in import paths: what Node's ES module loader and browsers need.
      "--es_opt=target=ts,import_extension=js",
      `--proto_path=${protoRoot}`,
      join(protoRoot, "im/v1/client.proto"),
    ],
    { stdio: "inherit" },
  );
} catch (error) {
  console.error(`generate: ${protoc} failed (${error.message}); is protobuf-compiler installed?`);
  process.exit(1);
}
