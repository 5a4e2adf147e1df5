// A data set folder the library makes (downloaded, or generated from a seed) is made once and only
// once: under a lock, so two cells or processes asking for it at the same time share the work; into a
// temporary sibling renamed into place, so a half-made folder is never seen; with a marker that says
// what the folder holds, so a folder made with other options, or one the user made, is never taken for it.
import * as fs from "fs";
import * as path from "path";
import { randomBytes } from "crypto";
import { cacheDir } from "../util/download";
import { withLock } from "../util/lock";

const MARKER = ".inception-lab-dataset.json";

function readMarker(dir: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MARKER), "utf8"));
  } catch {
    return null;
  }
}

/** Every file below `dir`, as sorted relative paths. */
function listFiles(dir: string, prefix = ""): string[] {
  return fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? listFiles(dir, path.join(prefix, entry.name)) : [path.join(prefix, entry.name)]))
    .sort();
}

export interface DatasetRecipe {
  /** What the folder holds (the generator and its options, or the source archive); stored in the marker. */
  description: object;
  /** The files an earlier version made for this description (a folder of exactly these is adopted), if known. */
  files?: string[];
  /** Writes the data set into the empty folder `tmp`. */
  fill(tmp: string): Promise<void>;
}

/** Returns `dir` holding the data set `recipe` describes, making it first if needed. */
export async function datasetFolder(dir: string, recipe: DatasetRecipe): Promise<string> {
  const target = path.resolve(dir);
  const wanted = JSON.stringify(recipe.description);
  const ready = () => JSON.stringify(readMarker(target)) === wanted;
  if (ready()) return target;
  // Folders in the cache are the library's own: one made by an older version, or with a marker from
  // an interrupted run, is made again. Elsewhere a folder is the user's unless it is exactly ours.
  const inCache = target.startsWith(cacheDir() + path.sep);
  const unusable = () => {
    if (!fs.existsSync(target) || inCache) return null;
    if (!fs.statSync(target).isDirectory()) return `${target} is a file; give a folder path for the data set.`;
    const marker = readMarker(target);
    if (marker) return `${target} holds a data set made with other options (${JSON.stringify(marker)}); give another folder.`;
    if (recipe.files && JSON.stringify(listFiles(target).filter((f) => !f.startsWith("."))) === JSON.stringify([...recipe.files].sort())) return "adopt";
    return `${target} exists and holds files Inception Lab did not write; give a new folder for the data set.`;
  };
  const problem = unusable();
  if (problem && problem !== "adopt") throw new Error(problem);
  return withLock(
    target,
    async () => {
      if (ready()) return target; // another cell or process made it while this one waited
      if (unusable() === "adopt") {
        fs.writeFileSync(path.join(target, MARKER), wanted);
        return target;
      }
      const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
      const old = `${target}.old-${process.pid}-${randomBytes(4).toString("hex")}`;
      try {
        fs.mkdirSync(tmp, { recursive: true });
        await recipe.fill(tmp);
        fs.writeFileSync(path.join(tmp, MARKER), wanted);
        if (fs.existsSync(target)) fs.renameSync(target, old); // only in the cache: the library's own folder
        fs.renameSync(tmp, target);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
        fs.rmSync(old, { recursive: true, force: true });
      }
      return target;
    },
    () => console.warn(`inception-lab: ${target} is being made by another cell or process; waiting for it.`),
  );
}
