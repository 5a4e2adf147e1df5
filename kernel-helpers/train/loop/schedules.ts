// Learning-rate schedules as callbacks: before every step the schedule sets the phase's learning rate
// from the phase's starting one and how far the phase has come. The optimizers keep the rate in a
// variable that a recorded step reads as an input (optimizers.ts), so a schedule never re-records.
import { checkOptions, OptionError, rule } from "../../util/options";
import type { Callback, TrainingLoop } from "./loop";

/** Where a phase stands: step and epoch counted from 1 within the phase, and its totals. */
export interface ScheduleProgress {
  step: number;
  steps: number;
  epoch: number;
  epochs: number;
}

/** The learning rate for this point of the phase, given the rate the phase started with. */
export type Schedule = (progress: ScheduleProgress, initial: number) => number;

export class LearningRateSchedule implements Callback {
  /** Each phase's starting rate in this call: a schedule given again to a later call (run.fit) starts from that call's rate. */
  private readonly initial = new Map<string, number>();

  constructor(readonly schedule: Schedule) {}

  onTrainBegin(): void {
    this.initial.clear();
  }

  onBatchBegin(_: number, loop: TrainingLoop): void {
    const phase = loop.phase!;
    if (!this.initial.has(phase.name)) this.initial.set(phase.name, phase.learningRate);
    const progress = { step: loop.stepInPhase, steps: phase.epochs * phase.stepsPerEpoch, epoch: loop.epochInPhase, epochs: phase.epochs };
    phase.learningRate = this.schedule(progress, this.initial.get(phase.name)!);
  }
}

/** Cosine decay over each phase from its starting rate to `floor` times it (SGDR without restarts). */
export function cosineDecay(options: { floor?: number } = {}): LearningRateSchedule {
  checkOptions(options, { floor: rule.between(0, 1) }, "cosineDecay");
  const floor = options.floor ?? 0;
  return new LearningRateSchedule(({ step, steps }, initial) => {
    const progress = Math.min(1, (step - 1) / Math.max(steps - 1, 1));
    return initial * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
  });
}

/** The rate times `factor` after every `every` epochs of a phase (Keras' and Caffe's step decay). */
export function stepDecay(options: { every: number; factor?: number }): LearningRateSchedule {
  checkOptions(options, { every: rule.whole(1), factor: rule.positive() }, "stepDecay");
  const { every, factor = 0.1 } = options;
  if (every === undefined) throw new OptionError("every", "stepDecay: every is missing: give the epochs between two decays, such as stepDecay({ every: 10 }).");
  return new LearningRateSchedule(({ epoch }, initial) => initial * factor ** Math.floor((epoch - 1) / every));
}
