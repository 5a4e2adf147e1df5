// The training loop as a small driver, the way Keras' fit and fastai's Learner run: phases of epochs of
// batches, one optimizer step per batch, validation after each epoch, a record per step and per epoch.
// Every rule (keep the best weights, stop early, checkpoint, time budget, interrupt, NaN loss, progress,
// learning-rate schedules, live charts) is a callback (callbacks.ts): a new rule is a new callback, and
// this file does not change.

export interface StepRecord {
  step: number;
  epoch: number;
  phase: string;
  loss: number;
  accuracy: number;
  learningRate: number;
  /** Seconds since training started. */
  seconds: number;
  /** Training images seen so far. */
  images: number;
}

export interface EpochRecord {
  epoch: number;
  phase: string;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  learningRate: number;
  seconds: number;
  images: number;
  /** Estimated floating-point operations spent so far (forward and backward). */
  flops: number;
}

/**
 * Why a run ended before its last epoch. The kinds are few and fixed (code compares them); what happened in
 * words is the loop's stopMessage ("the loss became NaN at step 3: ...", "stopped by EarlyStopping ...").
 */
export type StopReason = "interrupted" | "time budget reached" | "loss not finite" | "stopped by a callback" | "failed";

export interface History {
  steps: StepRecord[];
  epochs: EpochRecord[];
}

export interface LabelledBatch {
  x: { shape: number[]; dispose(): void };
  y: { dispose(): void };
}

/** One stretch of training with one optimizer over one set of variables (head warm-up, fine-tune, ...). */
export interface Phase<Batch extends LabelledBatch = LabelledBatch> {
  name: string;
  epochs: number;
  stepsPerEpoch: number;
  /** Operations per training image in this phase (forward plus backward). */
  flopsPerImage: number;
  /** The learning rate now; schedules set it. */
  learningRate: number;
  batches(epoch: number): AsyncIterable<Batch>;
  /** One optimizer step on a batch (the loop disposes the batch afterwards). */
  train(batch: Batch): { loss: number; accuracy: number };
  validate(): Promise<{ loss: number; accuracy: number } | null>;
  /** Frees what the phase holds (its step, graphs, optimizer). */
  dispose(): void;
}

/** A rule of the loop. Each hook gets the loop, which it may read, or stop. */
export interface Callback {
  onTrainBegin?(loop: TrainingLoop): unknown;
  onEpochBegin?(epoch: number, loop: TrainingLoop): unknown;
  onBatchBegin?(step: number, loop: TrainingLoop): unknown;
  onBatchEnd?(record: StepRecord, loop: TrainingLoop): unknown;
  onEpochEnd?(record: EpochRecord, loop: TrainingLoop): unknown;
  onTrainEnd?(loop: TrainingLoop): unknown;
}

export interface Resumed {
  /** The epochs (and their steps) already trained: the loop continues after the last. */
  history: History;
  /**
   * The phases are new ones that follow those epochs (run.fit), numbered after the last of them; without
   * it they are the same plan as before (a resumed checkpoint), whose epochs up to the last are skipped.
   */
  continued?: boolean;
}

export class TrainingLoop {
  readonly history: History = { steps: [], epochs: [] };
  /** The phase running now, its epoch and step counted from 1 within it. */
  phase: Phase | null = null;
  epochInPhase = 0;
  stepInPhase = 0;
  /** Why the whole run ended before its last epoch, or null; stopMessage says it in words. */
  stopReason: StopReason | null = null;
  stopMessage: string | null = null;
  /** Phases a callback ended before their last epoch, with the reason (early stopping). */
  readonly endedPhases: { phase: string; reason: string }[] = [];
  /** Problems callbacks met without stopping the run (a checkpoint that could not be written). */
  readonly warnings: string[] = [];
  private phaseEnd: string | null = null;
  private started = performance.now();
  private images = 0;
  private flops = 0;
  private readonly firstEpoch: number;
  /** Epochs and steps before this loop's phases when it continues a run (0 otherwise). */
  private readonly epochOffset: number;
  private readonly stepOffset: number;

  constructor(
    readonly phases: Phase[],
    readonly callbacks: Callback[],
    resumed?: Resumed,
  ) {
    const epochs = resumed?.history.epochs ?? [];
    const last = epochs[epochs.length - 1];
    // Steps of an epoch that never finished (an interrupt in the first epoch) still count: time and images go on.
    const lastStep = resumed?.history.steps[resumed.history.steps.length - 1];
    this.history.steps.push(...(resumed?.history.steps ?? []));
    this.history.epochs.push(...epochs);
    this.firstEpoch = (last?.epoch ?? 0) + 1;
    this.epochOffset = resumed?.continued ? (last?.epoch ?? 0) : 0;
    this.stepOffset = resumed?.continued ? this.history.steps.length : 0;
    if (last) {
      this.started -= last.seconds * 1000;
      this.images = last.images;
      this.flops = last.flops;
    } else if (lastStep) {
      this.started -= lastStep.seconds * 1000;
      this.images = lastStep.images;
    }
  }

  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  get totalEpochs(): number {
    return this.epochOffset + this.phases.reduce((sum, p) => sum + p.epochs, 0);
  }

  get totalSteps(): number {
    return this.stepOffset + this.phases.reduce((sum, p) => sum + p.epochs * p.stepsPerEpoch, 0);
  }

  /** Training images per second since the start (resumed runs included). */
  get imagesPerSecond(): number {
    return this.images / Math.max(this.seconds, 1e-9);
  }

  /** Ends the whole run after the current step; `message` says why (a callback's own words), `reason` what kind of stop it is. */
  stop(message: string, reason: StopReason = "stopped by a callback"): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopMessage = message;
  }

  /** Ends the current phase after the current epoch; the next phase, if any, starts. */
  endPhase(reason: string): void {
    this.phaseEnd ??= reason;
  }

  /** Notes a problem that does not stop training (said once per message). */
  warn(message: string): void {
    if (this.warnings.includes(message)) return;
    this.warnings.push(message);
    console.warn(`inception-lab: ${message}`);
  }

  private async each(hook: (callback: Callback) => unknown): Promise<void> {
    for (const callback of this.callbacks) await hook(callback);
  }

  async run(): Promise<History> {
    // Epochs are numbered by the plan, not by how many ran: a phase that early stopping ended still
    // counts all its epochs, so a resumed run finds each epoch number in the same phase.
    let offset = this.epochOffset;
    let trainEnded = false;
    try {
      await this.each((c) => c.onTrainBegin?.(this));
      for (const phase of this.phases) {
        this.phase = phase;
        this.phaseEnd = null;
        try {
          for (this.epochInPhase = 1; this.epochInPhase <= phase.epochs && !this.stopReason && !this.phaseEnd; this.epochInPhase++) {
            const epoch = offset + this.epochInPhase;
            if (epoch < this.firstEpoch) continue;
            await this.runEpoch(phase, epoch);
          }
          offset += phase.epochs;
          // Ended before its last epoch: ending at the last one is no early end.
          if (this.phaseEnd && this.epochInPhase <= phase.epochs) this.endedPhases.push({ phase: phase.name, reason: this.phaseEnd });
        } finally {
          phase.dispose();
        }
        if (this.stopReason) break;
      }
      trainEnded = true;
      await this.each((c) => c.onTrainEnd?.(this));
    } finally {
      // Phases that never started are freed here; the others were freed when they ended.
      this.phases.slice(this.phase ? this.phases.indexOf(this.phase) + 1 : 0).forEach((phase) => phase.dispose());
      if (!trainEnded) {
        // A failure mid-run still ends every rule (best weights restored, progress closed, listeners removed).
        for (const callback of this.callbacks) await Promise.resolve(callback.onTrainEnd?.(this)).catch(() => undefined);
      }
    }
    return this.history;
  }

  private async runEpoch(phase: Phase, epoch: number): Promise<void> {
    await this.each((c) => c.onEpochBegin?.(epoch, this));
    const sums = { loss: 0, accuracy: 0, images: 0 };
    this.stepInPhase = (this.epochInPhase - 1) * phase.stepsPerEpoch;
    for await (const batch of phase.batches(epoch)) {
      this.stepInPhase++;
      await this.each((c) => c.onBatchBegin?.(this.history.steps.length + 1, this));
      const count = batch.x.shape[0];
      let result: { loss: number; accuracy: number };
      try {
        result = phase.train(batch);
      } finally {
        batch.x.dispose();
        batch.y.dispose();
      }
      sums.loss += result.loss * count;
      sums.accuracy += result.accuracy * count;
      sums.images += count;
      this.images += count;
      this.flops += count * phase.flopsPerImage;
      const record: StepRecord = { step: this.history.steps.length + 1, epoch, phase: phase.name, ...result, learningRate: phase.learningRate, seconds: this.seconds, images: this.images };
      this.history.steps.push(record);
      await this.each((c) => c.onBatchEnd?.(record, this));
      await new Promise((resolve) => setImmediate(resolve)); // lets an interrupt signal in
      if (this.stopReason) break;
    }
    if (sums.images === 0 || this.stopReason === "interrupted") return;
    const validation = await phase.validate();
    const record: EpochRecord = {
      epoch,
      phase: phase.name,
      loss: sums.loss / sums.images,
      accuracy: sums.accuracy / sums.images,
      valLoss: validation?.loss ?? null,
      valAccuracy: validation?.accuracy ?? null,
      learningRate: phase.learningRate,
      seconds: this.seconds,
      images: this.images,
      flops: this.flops,
    };
    this.history.epochs.push(record);
    await this.each((c) => c.onEpochEnd?.(record, this));
  }
}
