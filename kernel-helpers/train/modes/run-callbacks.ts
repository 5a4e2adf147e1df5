// The callbacks of a training call, in the order they run: the rules every call follows (keep the best
// weights, checkpoints, early stopping, the time budget, interrupts, a loss that is not a number, progress,
// TensorBoard), then what layers above add to every run (the notebook layer's live charts), then the call's
// own (the user's). Callbacks belong to the call that is given them: run.fit uses its own, never the first
// call's again (a schedule or a tfjs EarlyStopping from the first call would otherwise silently govern the next).
import * as path from "path";
import type { InterruptFlag } from "../../util/interrupt";
import type { Checkpoint } from "../classifier/checkpoint";
import { TensorBoardLog } from "../classifier/tensorboard";
import { forLoop, type RunFacts } from "../loop/callback-adapter";
import { EarlyStopping, KeepBestWeights, ProgressBar, StopOnInterrupt, StopOnNaN, TimeBudget } from "../loop/callbacks";
import type { Callback } from "../loop/loop";
import type { tf } from "../../runtime/tf";
import type { Resolved } from "./options";
import type { Trainer } from "./trainer";

/** Callbacks that layers above training add to every run, by name (the notebook layer: live charts). */
const addedByLayersAbove = new Map<string, (options: Resolved) => Callback[]>();

/** Adds callbacks to every training run, made from its options; a second call with the same name replaces the first. */
export function addDefaultCallbacks(name: string, make: (options: Resolved) => Callback[]): void {
  addedByLayersAbove.set(name, make);
}

/** The callbacks of one call of `trainer` with `settings`. */
export function runCallbacks(trainer: Trainer, settings: Resolved, parts: { checkpoint: Checkpoint | null; interrupt: InterruptFlag }): Callback[] {
  const { data, models } = trainer;
  const facts: RunFacts = { samples: data.files("train").length, batchSize: settings.batchSize, doValidation: data.files("validation").length > 0 };
  const keep = trainer.keptWeights().map((w) => w.read() as tf.Variable);
  return [
    new KeepBestWeights(() => keep),
    ...(parts.checkpoint ? [parts.checkpoint] : []),
    ...(settings.earlyStopping !== false ? [new EarlyStopping(settings.earlyStopping)] : []),
    ...(settings.maxSeconds > 0 ? [new TimeBudget(settings.maxSeconds)] : []),
    new StopOnInterrupt(parts.interrupt),
    new StopOnNaN(),
    ...(settings.progress ? [new ProgressBar()] : []),
    ...(settings.tensorboard ? [new TensorBoardLog(path.resolve(settings.tensorboard))] : []),
    ...[...addedByLayersAbove.values()].flatMap((make) => make(settings)),
    ...settings.callbacks.map((callback) => forLoop(callback, parts.interrupt, models.full.model, facts)),
  ];
}
