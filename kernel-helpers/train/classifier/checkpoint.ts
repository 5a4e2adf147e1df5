// Checkpoints: after every better epoch, the model and the run's history go into checkpointDir, written
// whole or not at all (util/atomic.ts). A checkpoint that cannot be written (a full disk) is reported and
// training goes on: the run is worth more than its side job. Resuming reads the checkpoint back only
// after checking its files against their manifest, its history against the shape the library writes,
// and that it belongs to this kind of run: the same mode, weights, cut, input size and classes.
import * as fs from "fs";
import * as path from "path";
import { loadModelFolder, writeTfjsModel } from "../../network/model-files";
import { tf } from "../../runtime/tf";
import { verifyFolder, writeAtomically, writeFolder } from "../../util/atomic";
import { Tracker } from "../loop/callbacks";
import { type ClassifierInfo, labelsFile } from "./classifier";
import type { EpochRecord, History, TrainingLoop } from "../loop/loop";

/** What makes a checkpoint fit a run: resuming another kind of run would mix up weights. */
export interface RunIdentity {
  mode: string;
  /** The weights the run started from (their content id) and the cut layer. */
  weights: string;
  layer: string;
  inputSize: number;
  classes: string[];
  /** The blocks the run trains; a checkpoint of a run training other blocks does not fit. */
  trainedBlocks: string[];
}

interface CheckpointFile {
  epoch: number;
  identity: RunIdentity;
  history: History;
}

/** Writes the best model so far, its labels and the history, after every better epoch. */
export class Checkpoint extends Tracker {
  written = 0;

  constructor(
    readonly dir: string,
    private readonly model: tf.LayersModel,
    private readonly identity: RunIdentity,
    private readonly labels: ClassifierInfo,
  ) {
    super();
  }

  async onEpochEnd(record: EpochRecord, loop: TrainingLoop): Promise<void> {
    if (!this.track(record)) return;
    const history = loop.history;
    const state: CheckpointFile = { epoch: record.epoch, identity: this.identity, history };
    try {
      await writeFolder(this.dir, async (tmp) => {
        await writeTfjsModel(tmp, this.model);
        for (const [name, content] of Object.entries(labelsFile(this.labels))) writeAtomically(path.join(tmp, name), content);
        writeAtomically(path.join(tmp, "history.json"), JSON.stringify(state));
      });
      this.written++;
    } catch (error) {
      loop.warn(`the checkpoint of epoch ${record.epoch} was not written (${(error as Error).message}) Training goes on; the previous checkpoint in ${this.dir}, if any, is unchanged.`);
    }
  }
}

const isNumber = (value: unknown) => typeof value === "number" && Number.isFinite(value);
const EPOCH_FIELDS = ["epoch", "loss", "accuracy", "seconds", "images", "flops"];

/** The checkpoint's history.json, checked field by field; throws naming the file and what is wrong. */
function readCheckpointFile(dir: string): CheckpointFile {
  const file = path.join(dir, "history.json");
  const damaged = (what: string) => new Error(`resume: ${file} ${what}; start without resume, or give another checkpointDir.`);
  let state: Partial<CheckpointFile>;
  try {
    state = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw damaged(`cannot be read (${(error as Error).message})`);
  }
  if (!state || typeof state !== "object") throw damaged("is not a checkpoint");
  if (!Number.isInteger(state.epoch) || state.epoch! < 1) throw damaged(`has no epoch number (epoch: ${JSON.stringify(state.epoch)})`);
  const identity = state.identity;
  if (!identity || typeof identity.mode !== "string" || !Array.isArray(identity.classes) || !Array.isArray(identity.trainedBlocks)) throw damaged("does not say which run it belongs to (written by an older version?)");
  const history = state.history;
  if (!history || !Array.isArray(history.epochs) || !Array.isArray(history.steps)) throw damaged("has no history of epochs and steps");
  const bad = history.epochs.find((e) => !e || !EPOCH_FIELDS.every((key) => isNumber((e as unknown as Record<string, unknown>)[key])));
  if (bad) throw damaged(`has an epoch record with missing or non-numeric fields (${JSON.stringify(bad).slice(0, 120)})`);
  if (!history.epochs.some((e) => e.epoch === state.epoch)) throw damaged(`does not record its own epoch ${state.epoch}`);
  return state as CheckpointFile;
}

function describeMismatch(saved: RunIdentity, wanted: RunIdentity): string | null {
  const list = (values: string[]) => values.join(", ");
  if (saved.mode !== wanted.mode) return `it is a checkpoint of a ${saved.mode} run, and this is a ${wanted.mode} run`;
  if (saved.weights !== wanted.weights) return `it started from other weights (${saved.weights}; these are ${wanted.weights})`;
  if (saved.layer !== wanted.layer) return `its classifier is cut at ${saved.layer}, this run at ${wanted.layer}`;
  if (saved.inputSize !== wanted.inputSize) return `its input size is ${saved.inputSize}, this run's ${wanted.inputSize}`;
  if (list(saved.classes) !== list(wanted.classes)) return `it has ${saved.classes.length} classes (${list(saved.classes)}), the data set ${wanted.classes.length} (${list(wanted.classes)})`;
  if (list(saved.trainedBlocks) !== list(wanted.trainedBlocks)) return `it trains ${list(saved.trainedBlocks)}, this run ${list(wanted.trainedBlocks)}`;
  return null;
}

/**
 * Loads the checkpoint in `dir` into `weights` (the variables the run owns, in the model's weight
 * order; others are left alone) and returns the history up to the checkpoint's epoch.
 */
export async function readCheckpoint(dir: string, wanted: RunIdentity, model: tf.LayersModel, owned: Set<tf.LayerVariable>): Promise<History> {
  if (!fs.existsSync(path.join(dir, "history.json"))) throw new Error(`resume: ${dir} has no checkpoint (history.json) to continue from.`);
  try {
    verifyFolder(dir);
  } catch (error) {
    throw new Error(`resume: ${(error as Error).message}`);
  }
  const state = readCheckpointFile(dir);
  const mismatch = describeMismatch(state.identity, wanted);
  if (mismatch) throw new Error(`resume: the checkpoint in ${dir} does not fit this run: ${mismatch}. Start without resume, or give another checkpointDir.`);
  const saved = await loadModelFolder(dir);
  try {
    const shapes = (m: tf.LayersModel) => m.weights.map((w) => w.shape.join("x")).join();
    if (shapes(saved) !== shapes(model)) throw new Error(`resume: the checkpoint in ${dir} holds another network or head; start without resume.`);
    model.weights.forEach((w, i) => {
      if (owned.has(w)) w.write(saved.weights[i].read());
    });
  } finally {
    tf.dispose(saved.weights.map((w) => w.read()));
  }
  return { epochs: state.history.epochs.filter((e) => e.epoch <= state.epoch), steps: state.history.steps.filter((s) => s.epoch <= state.epoch) };
}
