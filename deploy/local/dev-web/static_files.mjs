// Files under a few URL prefixes, each served from one directory, never above it.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

// `mounts`: [urlPrefix, directory] pairs, the longest prefix first. Resolves with false when no
// file answers the path (the caller sends 404).
export async function serveStatic(mounts, pathname, response) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  if (decoded.includes("\0")) return false;
  for (const [prefix, directory] of mounts) {
    if (!decoded.startsWith(prefix)) continue;
    const relative = normalize(decoded.slice(prefix.length) || "index.html");
    if (relative.startsWith("..") || relative.startsWith(sep)) return false;
    const file = join(directory, relative);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return false;
    response.writeHead(200, {
      "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
      "Content-Length": info.size,
      "Cache-Control": "no-cache", // a rebuild shows at the next reload
    });
    createReadStream(file)
      .on("error", () => response.destroy())
      .pipe(response);
    return true;
  }
  return false;
}
