// The rules of the training loop, each a callback (loop.ts) that can be tested on its own with fake
// records: keep the best weights, stop early, respect a time budget, stop on a kernel interrupt or a
// loss that is not a number, and show progress. Checkpoints, TensorBoard logs and learning-rate schedules have
// files of their own; live charts come from the plots layer, added to every run by the notebook layer.
import { Progress } from "../../display/progress";
import { tf } from "../../runtime/tf";
import type { InterruptFlag } from "../../util/interrupt";
import type { Callback, EpochRecord, StepRecord, TrainingLoop } from "./loop";

/** On equal validation accuracy, a loss lower by more than this counts as better. */
export const MIN_LOSS_DELTA = 1e-4;

/**
 * Whether `record` beats `best`: a higher validation accuracy (training accuracy without a validation
 * split), or an equal one with a loss lower by more than MIN_LOSS_DELTA (so a creeping loss does not hold
 * off early stopping forever). An epoch with a loss that is not a finite number never improves. The one
 * rule that keeping weights, checkpoints and early stopping share.
 */
export function improves(record: EpochRecord, best: EpochRecord | null): boolean {
  // An epoch whose loss is not a number trained on garbage: never the best.
  if (!Number.isFinite(record.loss) || (record.valLoss !== null && !Number.isFinite(record.valLoss))) return false;
  if (!best) return true;
  const [accuracy, bestAccuracy] = [record.valAccuracy ?? record.accuracy, best.valAccuracy ?? best.accuracy];
  const [loss, bestLoss] = [record.valLoss ?? record.loss, best.valLoss ?? best.loss];
  return accuracy > bestAccuracy || (accuracy === bestAccuracy && loss < bestLoss - MIN_LOSS_DELTA);
}

/** The best of a list of epochs by `improves`, or null. */
export function bestEpoch(epochs: EpochRecord[]): EpochRecord | null {
  return epochs.reduce<EpochRecord | null>((best, record) => (improves(record, best) ? record : best), null);
}

/** A callback that follows the best epoch so far, starting from the epochs of a resumed run. */
export abstract class Tracker implements Callback {
  best: EpochRecord | null = null;

  onTrainBegin(loop: TrainingLoop): void | Promise<void> {
    this.best = bestEpoch(loop.history.epochs);
  }

  /** Updates the best; true when this epoch is the new best. */
  protected track(record: EpochRecord): boolean {
    if (!improves(record, this.best)) return false;
    this.best = record;
    return true;
  }
}

const allFinite = (tensors: tf.Tensor[]) => tensors.every((t) => tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0] === 1));

/**
 * Keeps a copy of the weights of the best epoch and puts them back when training ends. When no epoch
 * finished (an early interrupt), the weights stay as trained, unless they hold NaN or infinity: then the
 * weights from before training come back.
 */
export class KeepBestWeights extends Tracker {
  private saved: tf.Tensor[] | null = null;
  private initial: tf.Tensor[] | null = null;
  /** The last epoch before this call: a call (run.fit) none of whose epochs beats it ends as it began. */
  private before: EpochRecord | null = null;

  constructor(private readonly weights: () => tf.Variable[]) {
    super();
  }

  onTrainBegin(loop: TrainingLoop): void {
    super.onTrainBegin(loop);
    // A resumed run starts from the checkpoint, which holds the best weights so far.
    this.initial = this.weights().map((w) => tf.keep(w.clone()));
    if (this.best) this.saved = this.initial;
    this.before = loop.history.epochs[loop.history.epochs.length - 1] ?? null;
  }

  onEpochEnd(record: EpochRecord): void {
    if (!this.track(record)) return;
    if (this.saved !== this.initial) tf.dispose(this.saved ?? []);
    this.saved = this.weights().map((w) => tf.keep(w.clone()));
  }

  onTrainEnd(loop: TrainingLoop): void {
    const current = this.weights();
    const back = this.saved ?? (allFinite(current) ? null : this.initial);
    // A fine-tune whose network epochs never beat its warm-up ends with the warm-up's classifier: say so,
    // or the run looks fine-tuned while its network is as it started.
    const last = loop.history.epochs[loop.history.epochs.length - 1];
    const accuracy = (e: EpochRecord) => `${e.valAccuracy !== null ? "validation" : "training"} accuracy ${(e.valAccuracy ?? e.accuracy).toFixed(3)}`;
    if (this.saved && this.best && last && this.best.phase !== last.phase) {
      loop.warn(`no epoch of the ${last.phase} phase beat epoch ${this.best.epoch} (${this.best.phase}, ${accuracy(this.best)}): the weights of that epoch are kept, so what the ${last.phase} phase trained is undone. Train it longer or with another learning rate.`);
    } else if (this.saved && this.best && this.before && last && last !== this.before && this.best.epoch <= this.before.epoch) {
      loop.warn(`no epoch of this call beat epoch ${this.best.epoch} (${accuracy(this.best)}), from before it: its weights are kept, so what this call trained is undone. Train longer or with another learning rate.`);
    }
    back?.forEach((value, i) => current[i].assign(value));
    tf.dispose([...new Set([...(this.saved ?? []), ...(this.initial ?? [])])]);
    this.saved = this.initial = null;
  }
}

/** Ends a phase after `patience` epochs without a better epoch (a new phase starts counting afresh). */
export class EarlyStopping extends Tracker {
  private sinceBest = 0;
  private phase: string | null = null;

  constructor(readonly patience: number) {
    super();
  }

  onEpochEnd(record: EpochRecord, loop: TrainingLoop): void {
    if (record.phase !== this.phase) [this.phase, this.sinceBest] = [record.phase, 0];
    if (this.track(record)) this.sinceBest = 0;
    else if (++this.sinceBest >= this.patience) loop.endPhase("stopped early");
  }
}

/** Stops after `seconds` of training (checked after every step). */
export class TimeBudget implements Callback {
  /** The loop's clock when this call began: a run trained further (run.fit) has a budget per call. */
  private start = 0;

  constructor(readonly seconds: number) {}

  onTrainBegin(loop: TrainingLoop): void {
    this.start = loop.seconds;
  }

  onBatchEnd(_: StepRecord, loop: TrainingLoop): void {
    if (loop.seconds - this.start > this.seconds) loop.stop("time budget reached", "time budget reached");
  }
}

/** Stops at the next step boundary once the kernel is interrupted. */
export class StopOnInterrupt implements Callback {
  constructor(private readonly flag: InterruptFlag) {}

  onBatchEnd(_: StepRecord, loop: TrainingLoop): void {
    if (this.flag.requested) loop.stop("interrupted", "interrupted");
  }
}

/** Stops when the loss is not a finite number: further steps would only train on NaN. */
export class StopOnNaN implements Callback {
  onBatchEnd(record: StepRecord, loop: TrainingLoop): void {
    if (!Number.isFinite(record.loss)) loop.stop(`the loss became ${record.loss} at step ${record.step}: try a lower learning rate`, "loss not finite");
  }
}

/** A live progress bar with loss, accuracy, throughput, validation accuracy and ETA. */
export class ProgressBar implements Callback {
  private progress: Progress | null = null;
  private validation = "";
  private first = 0;

  onTrainBegin(loop: TrainingLoop): void {
    this.first = loop.history.steps.length;
    this.progress = new Progress("training", loop.totalSteps, "steps", this.first);
  }

  onBatchEnd(record: StepRecord, loop: TrainingLoop): void {
    const rate = loop.imagesPerSecond;
    this.progress?.update(
      record.step,
      `${record.phase} epoch ${record.epoch}/${loop.totalEpochs} · loss ${record.loss.toFixed(3)} · acc ${record.accuracy.toFixed(3)} · ${rate.toFixed(rate < 100 ? 1 : 0)} images/s${this.validation}`,
      record.step === this.first + 1,
    );
  }

  onEpochEnd(record: EpochRecord): void {
    this.validation = record.valAccuracy === null ? "" : ` · val acc ${record.valAccuracy.toFixed(3)}`;
  }

  onTrainEnd(loop: TrainingLoop): void {
    const why = loop.stopMessage ? ` · ${loop.stopMessage}` : loop.endedPhases.length ? ` · ${loop.endedPhases.map((e) => `${e.phase} ${e.reason}`).join(", ")}` : "";
    // The last epoch's accuracy is not the run's: keep-best keeps the best epoch, so the bar says both.
    const scores = loop.history.epochs.map((e) => e.valAccuracy).filter((a): a is number => a !== null);
    const validation = scores.length ? ` · last val acc ${scores[scores.length - 1].toFixed(3)}, best ${Math.max(...scores).toFixed(3)}` : "";
    this.progress?.finish(`${loop.history.epochs.length} epochs${validation}${why}`);
    this.progress = null;
  }
}
