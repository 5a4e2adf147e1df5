// The user's callbacks as the loop runs them. Two things stand between the loop and them:
// - A user's hook may return a promise that never settles. The loop waits for it only until an
//   interrupt: Ctrl-C (Jupyter's stop button) always ends the run, best weights restored. There is no
//   time limit: a hook may rightly take long (an evaluation, an upload), and no bound fits every one.
// - tfjs' callback objects (tf.callbacks.earlyStopping(), new tf.CustomCallback({...}), subclasses of
//   tf.Callback) expect Keras' calls: 0-based (epoch, logs) and (batch, logs) with numbers in logs,
//   setParams and setModel first, and they stop training through model.stopTraining. The adapter makes
//   those calls from the loop's records.
import type { tf } from "../../runtime/tf";
import type { InterruptFlag } from "../../util/interrupt";
import type { Callback, EpochRecord, StepRecord, TrainingLoop } from "./loop";

type Params = Record<string, number | string | boolean | number[] | string[] | boolean[]>;
type Logs = Record<string, number>;

/** What every tfjs callback has (tfjs' BaseCallback, not exported by tfjs under that name). */
export interface TfjsCallback {
  setParams(params: Params): void;
  setModel(model: tf.LayersModel): void;
}

/** tfjs' hooks, as its fit calls them. */
interface TfjsHooks {
  onTrainBegin?(logs?: Logs): unknown;
  onTrainEnd?(logs?: Logs): unknown;
  onEpochBegin?(epoch: number, logs?: Logs): unknown;
  onEpochEnd?(epoch: number, logs?: Logs): unknown;
  onBatchBegin?(batch: number, logs?: Logs): unknown;
  onBatchEnd?(batch: number, logs?: Logs): unknown;
}

/** A callback as the training options take it: the library's form, or a tfjs callback object. */
export type UserCallback = Callback | TfjsCallback;

/** True for tfjs callback objects, whatever copy of tfjs made them: they have setParams and setModel. */
export function isTfjsCallback(callback: object): callback is TfjsCallback {
  const { setParams, setModel } = callback as Partial<TfjsCallback>;
  return typeof setParams === "function" && typeof setModel === "function";
}

/** What tfjs' fit tells callbacks through setParams that the loop does not know. */
export interface RunFacts {
  samples: number;
  batchSize: number;
  doValidation: boolean;
}

/** Keras' and tfjs' names for the epoch's numbers (tfjs names accuracy "acc" or "accuracy" after the metric). */
function epochLogs(record: EpochRecord): Logs {
  const logs: Logs = { loss: record.loss, acc: record.accuracy, accuracy: record.accuracy };
  if (record.valLoss !== null) Object.assign(logs, { val_loss: record.valLoss });
  if (record.valAccuracy !== null) Object.assign(logs, { val_acc: record.valAccuracy, val_accuracy: record.valAccuracy });
  return logs;
}

/** A tfjs callback driven by the loop, the way tfjs' fit drives it. */
export class TfjsCallbackAdapter implements Callback {
  private batch = 0;
  private images = 0;
  private readonly hooks: TfjsHooks;

  constructor(
    readonly callback: TfjsCallback,
    private readonly model: tf.LayersModel,
    private readonly facts: Partial<RunFacts> = {},
  ) {
    this.hooks = callback as TfjsHooks;
  }

  async onTrainBegin(loop: TrainingLoop): Promise<void> {
    const lastEpoch = loop.history.epochs[loop.history.epochs.length - 1];
    this.images = loop.history.steps[loop.history.steps.length - 1]?.images ?? 0;
    const validation = this.facts.doValidation ?? true;
    this.model.stopTraining = false;
    this.callback.setParams({
      epochs: loop.totalEpochs,
      initialEpoch: lastEpoch?.epoch ?? 0,
      steps: loop.phases[0]?.stepsPerEpoch ?? 0,
      verbose: 0,
      ...this.facts,
      doValidation: validation,
      metrics: ["loss", "acc", ...(validation ? ["val_loss", "val_acc"] : [])],
    });
    this.callback.setModel(this.model);
    await this.hooks.onTrainBegin?.({});
    this.honourStop(loop);
  }

  async onEpochBegin(epoch: number, loop: TrainingLoop): Promise<void> {
    this.batch = 0;
    await this.hooks.onEpochBegin?.(epoch - 1, {});
    this.honourStop(loop);
  }

  async onBatchBegin(_: number, loop: TrainingLoop): Promise<void> {
    await this.hooks.onBatchBegin?.(this.batch, { batch: this.batch });
    this.honourStop(loop);
  }

  async onBatchEnd(record: StepRecord, loop: TrainingLoop): Promise<void> {
    const size = record.images - this.images;
    this.images = record.images;
    await this.hooks.onBatchEnd?.(this.batch, { batch: this.batch, size, loss: record.loss, acc: record.accuracy, accuracy: record.accuracy });
    this.batch++;
    this.honourStop(loop);
  }

  async onEpochEnd(record: EpochRecord, loop: TrainingLoop): Promise<void> {
    await this.hooks.onEpochEnd?.(record.epoch - 1, epochLogs(record));
    this.honourStop(loop);
  }

  async onTrainEnd(): Promise<void> {
    await this.hooks.onTrainEnd?.({});
  }

  /** tfjs' fit ends after the batch or epoch in which a callback set model.stopTraining (tfjs' EarlyStopping does). */
  private honourStop(loop: TrainingLoop): void {
    if (this.model.stopTraining) loop.stop(`stopped by ${this.callback.constructor.name} (model.stopTraining)`);
  }
}

const isThenable = (value: unknown): value is PromiseLike<unknown> => typeof (value as PromiseLike<unknown> | null)?.then === "function";

/** A user's callback whose promises the loop waits for only until an interrupt. */
export class Interruptible implements Callback {
  constructor(
    readonly callback: Callback,
    private readonly interrupt: InterruptFlag,
  ) {}

  onTrainBegin(loop: TrainingLoop): unknown {
    return this.wait("onTrainBegin", loop, this.callback.onTrainBegin?.(loop));
  }

  onEpochBegin(epoch: number, loop: TrainingLoop): unknown {
    return this.wait("onEpochBegin", loop, this.callback.onEpochBegin?.(epoch, loop));
  }

  onBatchBegin(step: number, loop: TrainingLoop): unknown {
    return this.wait("onBatchBegin", loop, this.callback.onBatchBegin?.(step, loop));
  }

  onBatchEnd(record: StepRecord, loop: TrainingLoop): unknown {
    return this.wait("onBatchEnd", loop, this.callback.onBatchEnd?.(record, loop));
  }

  onEpochEnd(record: EpochRecord, loop: TrainingLoop): unknown {
    return this.wait("onEpochEnd", loop, this.callback.onEpochEnd?.(record, loop));
  }

  onTrainEnd(loop: TrainingLoop): unknown {
    return this.wait("onTrainEnd", loop, this.callback.onTrainEnd?.(loop));
  }

  /**
   * What the loop awaits for one hook's result: nothing for a plain value; a promise that settles with
   * the hook's or at the next interrupt, which stops the run. Once the run is interrupted, a hook's
   * promise is not waited for (it runs on; a failure is noted).
   */
  private wait(hook: keyof Callback, loop: TrainingLoop, result: unknown): unknown {
    if (!isThenable(result)) return result;
    if (this.interrupt.requested) {
      Promise.resolve(result).catch((error) => loop.warn(`your callback's ${hook} failed after the interrupt: ${error instanceof Error ? error.message : String(error)}`));
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      const stopListening = this.interrupt.onInterrupt(() => {
        loop.stop("interrupted", "interrupted");
        loop.warn(`interrupted while your callback's ${hook} was still running: the run ended without waiting for it.`);
        resolve();
      });
      result.then(
        () => {
          stopListening();
          resolve();
        },
        (error) => {
          stopListening();
          reject(error);
        },
      );
    });
  }
}

/** A callback from the training options, ready for the loop. */
export function forLoop(callback: UserCallback, interrupt: InterruptFlag, model: tf.LayersModel, facts?: Partial<RunFacts>): Callback {
  return new Interruptible(isTfjsCallback(callback) ? new TfjsCallbackAdapter(callback, model, facts) : callback, interrupt);
}
