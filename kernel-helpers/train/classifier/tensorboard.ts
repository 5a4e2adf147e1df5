// Training curves for TensorBoard: per-step and per-epoch scalars (loss, accuracy, validation loss and
// accuracy, learning rate, images/s) in TensorFlow's event files, the ones TensorBoard reads
// (`npm run tensorboard`). One folder holds one run: two runs in one folder interleave their curves (each
// (tag, step) twice, with different values, and TensorBoard draws a zigzag), so a folder that already
// holds event files is refused before any work (checkLogFolder), and a lock keeps two runs that start at
// once from both writing. Each run gets its own TensorFlow writer, closed at its end: tfjs-node's
// summaryFileWriter keeps one writer per folder for the life of the process, so a second run in a
// notebook would append to the first run's file (or to one deleted since). Like checkpoints, a log that
// cannot be written is a warning, never the end of a run.
import * as fs from "fs";
import * as path from "path";
import { attrs, nativeBackend } from "../../runtime/native-ops";
import { tf } from "../../runtime/tf";
import { isLocked, tryLock } from "../../util/lock";
import type { Callback, EpochRecord, StepRecord, TrainingLoop } from "../loop/loop";
import { OptionError } from "../../util/options";

const EVENT_FILE = /^events\.out\.tfevents\./;

/** A folder name beside `logdir` that does not exist yet (logs/run-1 -> logs/run-2), for the message. */
function freshSibling(logdir: string): string {
  const [, stem, number] = /^(.*?)(?:-(\d+))?$/.exec(path.basename(logdir))!;
  for (let n = number ? Number(number) + 1 : 2; ; n++) {
    const candidate = path.join(path.dirname(logdir), `${stem}-${n}`);
    if (!fs.existsSync(candidate)) return candidate;
  }
}

/** Why one more run may not write into `logdir` as far as its files go (null: it may); `continuing`: a resumed run adds to its own log. */
function eventFilesProblem(logdir: string, continuing: boolean): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(logdir);
  } catch {
    return null; // a new folder
  }
  if (!stat.isDirectory()) return `${logdir} is a file, not a folder: give a folder for the logs.`;
  const events = fs.readdirSync(logdir).filter((name) => EVENT_FILE.test(name));
  if (events.length === 0 || continuing) return null;
  return (
    `${logdir} already holds a run's TensorBoard log (${events[0]}${events.length > 1 ? ` and ${events.length - 1} more` : ""}), and a second run there ` +
    `would mix its curves with the first's, step by step: give this run its own folder, such as ${freshSibling(logdir)} (or delete the old log).`
  );
}

/**
 * Throws, naming `option`, when a run may not log into `logdir`: it is a file, it already holds event files
 * (unless the run continues its own, `continuing`), or another run is writing there now. Reads only.
 */
export function checkLogFolder(logdir: string, option: string, continuing = false): void {
  const problem = isLocked(logdir) ? `another run is writing its TensorBoard log to ${logdir} now: give this run its own folder, such as ${freshSibling(logdir)}.` : eventFilesProblem(logdir, continuing);
  if (problem) throw new OptionError(option, `${option}: ${problem}`);
}

interface SummaryBackend {
  writeScalarSummary(handle: tf.Tensor, step: number, name: string, value: number): void;
  flushSummaryWriter(handle: tf.Tensor): void;
}

let writersMade = 0;

/** One events file, written by a TensorFlow summary writer of its own (not tfjs-node's one per folder). */
class EventsFile {
  private readonly handle: tf.Tensor;

  constructor(logdir: string) {
    const backend = nativeBackend();
    // The writer resource is shared by name within the process: a name of its own gives a writer of its own.
    const name = `inception-lab:${process.pid}:${++writersMade}:${logdir}`;
    this.handle = backend.executeSingleOutput("SummaryWriter", attrs({ shared_name: { type: "string", value: name }, container: { type: "string", value: "" } }), []);
    try {
      tf.tidy(() => backend.executeMultipleOutputs("CreateSummaryFileWriter", [], [this.handle, tf.scalar(logdir, "string"), tf.scalar(10, "int32"), tf.scalar(120_000, "int32"), tf.scalar(".v2", "string")], 0));
    } catch (error) {
      this.handle.dispose();
      throw error;
    }
  }

  scalar(name: string, value: number, step: number): void {
    (nativeBackend() as unknown as SummaryBackend).writeScalarSummary(this.handle, step, name, value);
  }

  /** Writes what is queued and closes the file; the writer is gone after this. */
  close(): void {
    try {
      (nativeBackend() as unknown as SummaryBackend).flushSummaryWriter(this.handle);
      nativeBackend().executeMultipleOutputs("CloseSummaryWriter", [], [this.handle], 0);
    } finally {
      this.handle.dispose();
    }
  }
}

export class TensorBoardLog implements Callback {
  private file: EventsFile | null = null;
  private release: (() => void) | null = null;

  constructor(readonly logdir: string) {}

  private write(loop: TrainingLoop, scalars: Record<string, number | null>, step: number): void {
    if (!this.file) return;
    try {
      for (const [name, value] of Object.entries(scalars)) if (value !== null && Number.isFinite(value)) this.file.scalar(name, value, step);
    } catch (error) {
      loop.warn(`the TensorBoard log in ${this.logdir} could not be written (${(error as Error).message}); training goes on.`);
      this.closeFile(loop);
    }
  }

  private closeFile(loop: TrainingLoop): void {
    const file = this.file;
    this.file = null;
    try {
      file?.close();
    } catch (error) {
      loop.warn(`the end of the TensorBoard log in ${this.logdir} could not be written (${(error as Error).message}).`);
    }
  }

  onTrainBegin(loop: TrainingLoop): void {
    try {
      fs.mkdirSync(path.dirname(this.logdir), { recursive: true });
      this.release = tryLock(this.logdir);
      // Checked again here: another run may have started writing since the options were checked.
      const problem = this.release ? eventFilesProblem(this.logdir, loop.history.steps.length > 0) : `another run is writing its TensorBoard log to ${this.logdir} now`;
      if (problem) {
        loop.warn(`no TensorBoard log for this run: ${problem}`);
        return;
      }
      this.file = new EventsFile(this.logdir);
    } catch (error) {
      loop.warn(`no TensorBoard log: ${this.logdir} cannot be written (${(error as Error).message}).`);
    }
  }

  onBatchEnd(record: StepRecord, loop: TrainingLoop): void {
    this.write(loop, { "step/loss": record.loss, "step/accuracy": record.accuracy, "step/learning_rate": record.learningRate, "step/images_per_second": loop.imagesPerSecond }, record.step);
  }

  onEpochEnd(record: EpochRecord, loop: TrainingLoop): void {
    this.write(loop, { "epoch/loss": record.loss, "epoch/accuracy": record.accuracy, "epoch/val_loss": record.valLoss, "epoch/val_accuracy": record.valAccuracy, "epoch/learning_rate": record.learningRate }, record.epoch);
  }

  onTrainEnd(loop: TrainingLoop): void {
    this.closeFile(loop);
    this.release?.();
    this.release = null;
  }
}
