// One prediction shape for everything that classifies images: the ImageNet top of a pretrained network
// (inception.classify) and a trained classifier (run.predict, a loaded classifier's predict).
import type { Precision } from "../runtime/precision";

export interface Prediction {
  /** The image's file, when it was given as a path. */
  path?: string;
  /** The most probable class, and its probability. */
  label: string;
  probability: number;
  /** The `topK` most probable classes, best first. */
  top: { label: string; probability: number }[];
  /** Every class's probability, in the classifier's class order. */
  probabilities: number[];
  /** The precision the network ran at. */
  precision: Precision;
}

/** Predictions from rows of class probabilities. */
/** How many classes a prediction lists when not told: five, or all of them where there are fewer. */
export const defaultTopK = (classes: number) => Math.min(5, classes);

export function predictions(rows: number[][], classes: (index: number) => string, topK: number, precision: Precision, paths?: string[]): Prediction[] {
  return rows.map((p, i) => {
    const top = p
      .map((probability, index) => ({ label: classes(index), probability }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, Math.max(1, topK));
    return { ...(paths ? { path: paths[i] } : {}), label: top[0].label, probability: top[0].probability, top, probabilities: p, precision };
  });
}
