// Shared by the tests: paths, the Keras reference files, a small local HTTP server, tensor counting.
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { execFileSync } from "child_process";
import type { AddressInfo } from "net";

export const root = path.join(__dirname, "..");
export const python = path.join(root, ".venv", "bin", "python");

/**
 * The test file this process runs: Node's runner gives each test file a process of its own, with the file as
 * argv[1]. Its scratch folders are its own (test-output/<file>/), so two files running side by side (scripts/
 * test.sh runs two at a time) can never clear or fill each other's: inside.test.ts once read images that
 * model.test.ts was regenerating under the same name.
 */
export function testFileName(argv1 = process.argv[1] ?? ""): string {
  if (!/\.test\.ts$/.test(argv1)) throw new Error(`scratch folders belong to a test file, and this process runs ${argv1 || "none"}: run it as node --test test/NAME.test.ts`);
  return path.basename(argv1, ".test.ts");
}

/** The folder where a test file's scratch folders live. */
export const scratchRoot = (file = testFileName()) => path.join(root, "test-output", file);

/** An empty folder of this test file's own, test-output/<test file>/<name>. */
export const scratch = (name: string) => {
  const dir = path.join(scratchRoot(), name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
};

export interface KerasReference {
  dir: string;
  size: number;
  images: number;
  params_top: number;
  params_notop: number;
  layers: { name: string; class: string; output: (number | null)[] }[];
  file: (name: string) => string;
  floats: (name: string) => Float32Array;
}

/** Files written by Python Keras (test/keras/reference.py), made once per checkout of the script. */
export function kerasReference(): KerasReference {
  const dir = path.join(scratchRoot(), "keras-reference");
  const script = path.join(root, "test", "keras", "reference.py");
  const stamp = path.join(dir, "script.stamp");
  const version = String(fs.statSync(script).mtimeMs);
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, "utf8") !== version) {
    fs.rmSync(dir, { recursive: true, force: true });
    execFileSync(python, [script, dir], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } });
    fs.writeFileSync(stamp, version);
  }
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8"));
  const file = (name: string) => path.join(dir, name);
  const floats = (name: string) => {
    const bytes = fs.readFileSync(file(name));
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  };
  return { dir, ...meta, file, floats };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Serves files from `dir` on 127.0.0.1 with HTTP range support; `log` records each request. */
export async function serveFolder(dir: string) {
  const log: { url: string; range?: string }[] = [];
  const server = http.createServer((req, res) => {
    log.push({ url: req.url!, range: req.headers.range });
    const file = path.join(dir, decodeURIComponent(req.url!.split("?")[0]));
    if (!file.startsWith(dir) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const size = fs.statSync(file).size;
    const range = /bytes=(\d+)-/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    if (start >= size && size > 0) {
      res.writeHead(416, { "content-range": `bytes */${size}` }).end();
      return;
    }
    res.writeHead(range ? 206 : 200, { "content-length": String(size - start) });
    fs.createReadStream(file, { start }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, log, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
