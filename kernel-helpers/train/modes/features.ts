// The features a head trains on (retraining, a fine-tune's warm-up) and scores with (a retrained classifier):
// from the bottleneck cache (data/bottlenecks.ts), which finds each image's features by its content.
import type { BottleneckCache, BottleneckStats } from "../../data/bottlenecks";
import type { ImageFolder } from "../../data/image-folder";
import { tf } from "../../runtime/tf";
import type { InterruptFlag } from "../../util/interrupt";
import type { Scorer, Scores } from "../classifier/classifier";
import type { FeatureSet } from "./head-phase";

/** Cached bottlenecks of the given splits (train, validation), with their labels; other splits are empty. */
export async function bottlenecks(data: ImageFolder, cache: BottleneckCache | null, splits: ("train" | "validation")[], interrupt?: InterruptFlag) {
  const stats: BottleneckStats = { computed: 0, cached: 0, repaired: 0, seconds: 0 };
  const empty = () => ({ x: tf.zeros([0, cache?.width ?? 0]) as tf.Tensor2D, y: tf.zeros([0], "int32") as tf.Tensor1D });
  const sets: Record<"train" | "validation", FeatureSet> = { train: empty(), validation: empty() };
  try {
    for (const split of splits) {
      const examples = data.examples(split);
      const result = await cache!.get(examples.map((e) => e.path), { title: `${split} features (${cache!.layer})`, interrupt });
      result.failed.forEach((f) => data.reportBadFile(f.path, f.reason));
      const labelOf = new Map(examples.map((e) => [e.path, e.label]));
      tf.dispose([sets[split].x, sets[split].y]);
      sets[split] = { x: result.features, y: tf.tensor1d(result.files.map((f) => labelOf.get(f)!), "int32") };
      stats.computed += result.stats.computed;
      stats.cached += result.stats.cached;
      stats.repaired += result.stats.repaired;
      stats.seconds += result.stats.seconds;
    }
  } catch (error) {
    tf.dispose([sets.train.x, sets.train.y, sets.validation.x, sets.validation.y]);
    throw error;
  }
  return { sets, stats };
}

/** A scorer for retrained classifiers: cached features through the head, instead of the whole network. */
export function cachedScorer(cache: BottleneckCache, headModel: tf.LayersModel): Scorer {
  return async (files: string[]): Promise<Scores> => {
    const result = await cache.get(files, { title: "features" });
    if (result.files.length === 0) {
      result.features.dispose();
      return { files: [], probabilities: [], failed: result.failed };
    }
    const output = headModel.predict(result.features) as tf.Tensor2D;
    const probabilities = (await output.array()) as number[][];
    tf.dispose([output, result.features]);
    return { files: result.files, probabilities, failed: result.failed };
  };
}
