// Training curves for TensorBoard: per-step and per-epoch scalars (loss, accuracy, validation loss and
// accuracy, learning rate, images/s) written through tfjs-node's summary writer, the event files
// TensorBoard reads (`npm run tensorboard`). Like checkpoints, a log that cannot be written is a
// warning, never the end of a run.
import { tf } from "../runtime/tf";
import type { Callback, EpochRecord, StepRecord, TrainingLoop } from "./loop";

type Writer = ReturnType<typeof tf.node.summaryFileWriter>;

export class TensorBoardLog implements Callback {
  private writer: Writer | null = null;

  constructor(readonly logdir: string) {}

  private write(loop: TrainingLoop, scalars: Record<string, number | null>, step: number): void {
    try {
      for (const [name, value] of Object.entries(scalars)) if (value !== null && Number.isFinite(value)) this.writer?.scalar(name, value, step);
    } catch (error) {
      loop.warn(`the TensorBoard log in ${this.logdir} could not be written (${(error as Error).message}); training goes on.`);
      this.writer = null;
    }
  }

  onTrainBegin(loop: TrainingLoop): void {
    try {
      this.writer = tf.node.summaryFileWriter(this.logdir);
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

  onTrainEnd(): void {
    this.writer?.flush();
  }
}
