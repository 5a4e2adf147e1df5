// The command line's outputs, checked before any work and written after training. A trained model must
// never be thrown away because its folder turns out to be the user's, and nothing the user made is
// replaced: model folders holding other files are refused, the labels and split files are left alone when
// they already hold exactly what would be written (a repeated command works) and refused otherwise, a
// TensorBoard folder holds one run, and no output may be given twice or inside another one's folder.
import * as fs from "fs";
import * as path from "path";
import { checkLogFolder } from "../train/classifier/tensorboard";
import { checkWritableFolder } from "../util/atomic";
import { checkExactFile, checkFolderWritable, writeExactFile } from "../util/exact-file";
import { type Command, type OutputFlag, UsageError } from "./flags";

/** Folders the library writes whole (a manifest says which files are its own). */
const MODEL_FOLDERS: OutputFlag[] = ["output_dir", "keras_dir", "saved_model_dir", "tflite_dir"];
/** Files written beside the models, in full. */
const FILES: OutputFlag[] = ["output_labels", "output_split"];

/** A check of the library's, said as the command line's: exit 2, the flag named. */
function asUsage(check: () => void): void {
  try {
    check();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A folder the run adds files to (features, logs): made now, and writable. */
function checkAddingTo(dir: string, flag: OutputFlag): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UsageError(`--${flag}: ${dir} is a file, not a folder.`);
  asUsage(() => checkFolderWritable(dir, `--${flag}`));
}

/** Refuses outputs that could not all be written: the same path twice, one inside another's folder, folders that are not free. */
export function checkOutputFolders(outputs: Command["outputs"]): void {
  const given = Object.entries(outputs) as [OutputFlag, string][];
  for (const [i, [flagA, a]] of given.entries()) {
    for (const [flagB, b] of given.slice(i + 1)) {
      if (a === b) throw new UsageError(`--${flagA} and --${flagB} both name ${a}: give each its own ${FILES.includes(flagA) ? "file" : "folder"}.`);
      for (const [inner, innerPath, outer, outerPath] of [[flagA, a, flagB, b], [flagB, b, flagA, a]] as const) {
        if (!FILES.includes(outer) && innerPath.startsWith(outerPath + path.sep)) {
          throw new UsageError(`--${inner} (${innerPath}) lies inside the folder of --${outer} (${outerPath}): give it a place of its own, outside it.`);
        }
      }
    }
  }
  for (const [flag, output] of given) {
    let ancestor = path.dirname(output);
    while (!fs.existsSync(ancestor)) ancestor = path.dirname(ancestor);
    if (!fs.statSync(ancestor).isDirectory()) throw new UsageError(`--${flag}: ${ancestor} is a file, so ${output} cannot be made: give a path in a folder.`);
  }
  for (const [flag, dir] of given) {
    if (MODEL_FOLDERS.includes(flag)) asUsage(() => checkWritableFolder(dir, `--${flag}`));
    if (flag === "summaries_dir") asUsage(() => checkLogFolder(dir, "--summaries_dir"));
    if (flag === "summaries_dir" || flag === "bottleneck_dir") checkAddingTo(dir, flag);
  }
}

/** Refuses a labels or split file that exists with other contents (or cannot be written), once the classes are known. */
export function checkOutputFiles(outputs: Command["outputs"], contents: Record<"output_labels" | "output_split", () => string>): void {
  for (const flag of ["output_labels", "output_split"] as const) {
    const file = outputs[flag];
    if (file) asUsage(() => checkExactFile(file, contents[flag](), `--${flag}`));
  }
}

/** Writes a labels or split file unless it holds exactly these contents already; says which. */
export function writeOutputFile(file: string, contents: string, flag: OutputFlag): string {
  const existed = fs.existsSync(file);
  writeExactFile(file, contents, `--${flag}`);
  return existed ? `Unchanged: ${file} (it holds these contents already)` : `Written: ${file}`;
}

/** A path as a shell word. */
const shellWord = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** The command that shows a log folder in TensorBoard, to paste as it is: from the project folder, or from anywhere. */
export function tensorboardCommand(logdir: string): string {
  const project = path.resolve(__dirname, "..", "..");
  if (process.cwd() === project) return `npm run tensorboard -- ${shellWord(path.relative(project, logdir) || ".")}`;
  return `npm --prefix ${shellWord(project)} run tensorboard -- ${shellWord(logdir)}`;
}
