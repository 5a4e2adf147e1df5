// One writer at a time for a path shared by cells, kernels or processes (a download, a generated data
// set, a checkpoint folder): the others wait and then find the work done, instead of failing halfway
// through a rename. A lock is a file created exclusively beside the target; its holder refreshes it,
// so a lock left by a process that died (or by a machine that shares the folder) goes stale and is taken over.
import * as fs from "fs";
import * as path from "path";

const HEARTBEAT_MS = 2_000;
/** A lock file not refreshed for this long belongs to a holder that is gone. */
const STALE_MS = 15_000;
const POLL_MS = 100;

/** Locks held by this process, so two cells of one kernel queue up as two processes do. */
const held = new Map<string, Promise<unknown>>();

/** Whether a process with this id runs (on this machine); one we may not signal runs too. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function stale(lockFile: string): boolean {
  try {
    const { pid } = JSON.parse(fs.readFileSync(lockFile, "utf8"));
    const age = Date.now() - fs.statSync(lockFile).mtimeMs;
    return age > STALE_MS || (typeof pid === "number" && pid !== process.pid && !processAlive(pid));
  } catch {
    // Unreadable or half-written by its creator: stale only once it is old.
    try {
      return Date.now() - fs.statSync(lockFile).mtimeMs > STALE_MS;
    } catch {
      return false;
    }
  }
}

/** Takes the lock file if it is free or stale; returns its release, or null while another holder has it. */
function tryAcquire(lockFile: string): (() => void) | null {
  for (;;) {
    try {
      const fd = fs.openSync(lockFile, "wx");
      try {
        fs.writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
      } finally {
        fs.closeSync(fd);
      }
      const heartbeat = setInterval(() => {
        const now = new Date();
        fs.utimes(lockFile, now, now, () => undefined);
      }, HEARTBEAT_MS);
      heartbeat.unref();
      return () => {
        clearInterval(heartbeat);
        fs.rmSync(lockFile, { force: true });
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") throw new Error(`cannot create the lock file ${lockFile} (${code}): is its folder writable?`);
      if (!stale(lockFile)) return null;
      fs.rmSync(lockFile, { force: true });
    }
  }
}

async function acquire(lockFile: string, onWait?: () => void): Promise<() => void> {
  let waited = false;
  for (;;) {
    const release = tryAcquire(lockFile);
    if (release) return release;
    if (!waited) onWait?.();
    waited = true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * The lock for `target` (`${target}.lock`) if no one holds it now, without waiting: its release, or null
 * when another holder (this process or another live one) has it. For work that must not queue up.
 */
export function tryLock(target: string): (() => void) | null {
  return tryAcquire(`${target}.lock`);
}

/** Whether a live holder has the lock for `target` now (a lock left by a dead process does not count). */
export function isLocked(target: string): boolean {
  const lockFile = `${target}.lock`;
  return fs.existsSync(lockFile) && !stale(lockFile);
}

/**
 * Runs `work` while holding the lock for `target` (the file `${target}.lock`); other callers, in this
 * process or another, wait for it. `onWait` is called once if the lock is busy.
 */
export async function withLock<T>(target: string, work: () => Promise<T>, onWait?: () => void): Promise<T> {
  const lockFile = `${target}.lock`;
  // The lock sits beside the target, so the target's folder must exist before the work that makes it runs
  // (a clean clone failed here on `dir: "../browser-data/shapes"`).
  try {
    fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  } catch {
    // Not makeable: acquire()'s error names the lock file and the reason.
  }
  const before = held.get(lockFile) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(async () => {
    const release = await acquire(lockFile, onWait);
    try {
      return await work();
    } finally {
      release();
    }
  });
  held.set(lockFile, mine);
  try {
    return await mine;
  } finally {
    if (held.get(lockFile) === mine) held.delete(lockFile);
  }
}
