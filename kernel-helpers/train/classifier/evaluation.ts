// What a trained classifier gets right and wrong on a split: retrain.py's final test accuracy and
// misclassified images, plus per-class precision/recall, the confusion matrix and the top losses.
import * as path from "path";
import { Displayable, escapeHtml, Table } from "../../display/display";
import type { PrecisionChoice } from "../../runtime/precision";

export interface ClassReport {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Mistake {
  path: string;
  label: string;
  predicted: string;
  /** Probability the classifier gave its (wrong) answer. */
  confidence: number;
  /** Cross-entropy loss of this image. */
  loss: number;
}

export class Evaluation extends Displayable {
  readonly accuracy: number;
  readonly perClass: ClassReport[];
  /** confusion[true][predicted] counts. */
  readonly confusion: number[][];
  readonly misclassified: Mistake[];
  /** The images with the highest loss, right or wrong, worst first. */
  readonly topLosses: Mistake[];

  constructor(
    readonly classes: string[],
    readonly files: string[],
    readonly labels: number[],
    readonly probabilities: number[][],
    readonly split = "test",
    /** The precision the network ran at. */
    readonly precision: PrecisionChoice | null = null,
    /** Images of the split that could not be read, left out of every number here. */
    readonly unreadable = 0,
    /** Small images of the worst mistakes, by file (data URLs), so plot.misclassified draws at once. */
    readonly thumbnails: Map<string, string> = new Map(),
  ) {
    super();
    const k = classes.length;
    this.confusion = classes.map(() => new Array(k).fill(0));
    const judged = files.map((file, i) => {
      const p = probabilities[i];
      const predicted = p.indexOf(Math.max(...p));
      this.confusion[labels[i]][predicted]++;
      return { path: file, label: classes[labels[i]], predicted: classes[predicted], confidence: p[predicted], loss: -Math.log(Math.max(p[labels[i]], 1e-7)), right: predicted === labels[i] };
    });
    this.accuracy = files.length ? judged.filter((j) => j.right).length / files.length : NaN;
    this.perClass = classes.map((label, c) => {
      const tp = this.confusion[c][c];
      const predictedC = this.confusion.reduce((sum, row) => sum + row[c], 0);
      const support = this.confusion[c].reduce((a, b) => a + b, 0);
      const precision = predictedC ? tp / predictedC : 0;
      const recall = support ? tp / support : 0;
      return { label, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, support };
    });
    const strip = ({ right: _, ...mistake }: (typeof judged)[number]) => mistake;
    this.misclassified = judged.filter((j) => !j.right).sort((a, b) => b.loss - a.loss).map(strip);
    this.topLosses = [...judged].sort((a, b) => b.loss - a.loss).slice(0, 16).map(strip);
  }

  perClassTable(): Table {
    return new Table(
      ["class", "precision", "recall", "F1", "images"],
      this.perClass.map((c) => [c.label, c.precision, c.recall, c.f1, c.support]),
      "Per class",
    );
  }

  confusionTable(): Table {
    return new Table(["true \\ predicted", ...this.classes], this.classes.map((label, i) => [label, ...this.confusion[i]]), "Confusion matrix");
  }

  /** What the numbers rest on: the images, any left out, the precision. */
  private basis(): string {
    return `${this.files.length} images${this.unreadable ? `, ${this.unreadable} unreadable left out` : ""}${this.precision ? `, ${this.precision.precision}` : ""}`;
  }

  toText(): string {
    const head = `${this.split} accuracy ${(this.accuracy * 100).toFixed(1)} % (${this.files.length - this.misclassified.length}/${this.files.length}; ${this.basis()})`;
    const mistakes = this.misclassified.slice(0, 10).map((m) => `  ${path.basename(m.path)}: ${m.label} taken for ${m.predicted} (${(m.confidence * 100).toFixed(0)} %)`);
    return [head, this.perClassTable().toText(), this.confusionTable().toText(), [`Misclassified (${this.misclassified.length}):`, ...mistakes].join("\n")].join("\n\n");
  }

  toHTML(): string {
    const mistakes = this.misclassified
      .slice(0, 20)
      .map((m) => `<li><code>${escapeHtml(path.basename(m.path))}</code>: ${escapeHtml(m.label)} taken for <b>${escapeHtml(m.predicted)}</b> (${(m.confidence * 100).toFixed(0)} %)</li>`)
      .join("");
    return (
      `<h4>${escapeHtml(this.split)} accuracy ${(this.accuracy * 100).toFixed(1)} % (${this.files.length - this.misclassified.length} of ${this.files.length})</h4><p><small>${escapeHtml(this.basis())}</small></p>` +
      `<div style="display:flex;gap:2em;flex-wrap:wrap">${this.perClassTable().toHTML()}${this.confusionTable().toHTML()}</div>` +
      `<p>Misclassified: ${this.misclassified.length}</p><ul>${mistakes}</ul>`
    );
  }
}
