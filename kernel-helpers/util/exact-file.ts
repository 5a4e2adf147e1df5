// A file the library writes where the user may keep one of their own (the command line's labels list, a
// data set's split list): written when absent, left alone when it already holds exactly what would be
// written (so a repeated command works), and refused when it holds anything else: it is the user's.
import * as fs from "fs";
import * as path from "path";
import { describeFileError, writeAtomically } from "./atomic";
import { OptionError } from "./options";

/** Why `file` cannot receive `content` (null when it can): it is a folder, or it holds something else. */
export function exactFileConflict(file: string, content: string): string | null {
  const stat = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!stat) return null;
  if (stat.isDirectory()) return `${file} is a folder: give the name of a file.`;
  let existing: Buffer;
  try {
    existing = fs.readFileSync(file);
  } catch (error) {
    return `${file} exists but cannot be read (${(error as NodeJS.ErrnoException).code}), and it is never replaced: give a new file name.`;
  }
  if (existing.equals(Buffer.from(content))) return null;
  return `${file} exists with other contents (${existing.length} bytes), and it is never replaced: give a new file name (or delete it yourself if you no longer need it).`;
}

/** Throws, naming `option`, when `file` cannot receive `content` or its folder cannot be written. Creates the folder. */
export function checkExactFile(file: string, content: string, option: string): void {
  const conflict = exactFileConflict(file, content);
  if (conflict) throw new OptionError(option, `${option}: ${conflict}`);
  checkFolderWritable(path.dirname(file), option);
}

/** Makes `dir` (and its parents) and throws, naming `option`, when it cannot be written. */
export function checkFolderWritable(dir: string, option: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (error) {
    throw new OptionError(option, `${option}: ${describeFileError(error, dir).message}`);
  }
}

/** Writes `content` to `file` (atomically) unless it holds exactly that already; throws, naming `option`, if it holds anything else. */
export function writeExactFile(file: string, content: string, option: string): string {
  checkExactFile(file, content, option);
  if (fs.existsSync(file)) return file;
  // Written beside it, then linked into place: a link fails where a file appeared since the check, which a
  // rename would replace.
  const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}`;
  try {
    writeAtomically(tmp, content);
    fs.linkSync(tmp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") checkExactFile(file, content, option);
    else throw new Error(`${option}: ${describeFileError(error, file).message}`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}
