// Scratch folders in the system temp folder, for files handed to another program (Python's Keras,
// TensorFlow's SavedModel loader) for one call. A killed process cannot remove its own, and an
// interrupted export left a 35 MB weights.f32 there for good (issue 20); so each folder carries its
// process's id in its name (inception-lab-KIND-PID-XXXXXX), and making one first removes those whose
// process is gone.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { processAlive } from "./lock";

const SCRATCH_NAME = /^inception-lab-[a-z]+-(\d+)-/;

/** Removes the scratch folders of processes that are gone (another user's, not removable, stay). */
export function sweepScratchFolders(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const name of entries) {
    const pid = Number(SCRATCH_NAME.exec(name)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    try {
      fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Not ours to remove (a shared temp folder): its owner's next call does.
    }
  }
}

/**
 * Runs `work` with a new scratch folder named for `kind` ("keras", "graph", ...), removed when `work`
 * ends, returns or throws, synchronously or as a promise.
 */
export function withScratchFolder<T>(kind: string, work: (dir: string) => T): T {
  sweepScratchFolders();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `inception-lab-${kind}-${process.pid}-`));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  let result: T;
  try {
    result = work(dir);
  } catch (error) {
    remove();
    throw error;
  }
  if (result instanceof Promise) return result.finally(remove) as T;
  remove();
  return result;
}
