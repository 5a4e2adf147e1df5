// "Which should I use, for my folder?" answered the way a careful practitioner would: do the cheap thing first.
// Retrain the final layer on cached features (minutes), measure its validation accuracy and where it fails (are
// the mistakes concentrated in pairs of classes the frozen features cannot tell apart?), measure this machine's
// throughput and how fast it decodes this folder's images, then recommend the next step with its predicted cost
// and the reason: stop here; fine-tune the top blocks; fine-tune everything; from scratch only with enough
// images per class. `advice.follow()` runs the recommended step, so the prediction can be checked.
import type { ImageFolder } from "../data/image-folder";
import { Displayable, escapeHtml, Table } from "../display/display";
import { formatDuration } from "../display/format";
import { decodeBatch } from "../network/decode";
import type { CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { checkOptions, rule } from "../util/options";
import type { Evaluation } from "../train/classifier/evaluation";
import { fineTune, retrainFinalLayer, trainFromScratch } from "../train/modes/modes";
import { TRAIN_RULES, type TrainOptions } from "../train/modes/options";
import { RECIPES } from "../train/modes/recipes";
import type { TrainingRun } from "../train/modes/run";
import { topBlock } from "./compare";
import { type Check, claim, type Claim, CLAIM_MIME } from "./claims";
import { accuracyStandardError, guessSpread } from "./statistics";
import { measureThroughput, predictRun, type RunShape, type Throughput } from "./cost-model";

/**
 * Images per class below which training Inception-v3 from scratch is not recommended: ImageNet, which it was
 * made for, has about 1,300 per class and still takes some 100 epochs (Szegedy et al. 2016); Kornblith et al.
 * (2019) found random initialisation behind fine-tuning on every small data set they tried.
 */
export const FROM_SCRATCH_MIN_PER_CLASS = 1000;

export interface AdviseOptions extends TrainOptions {
  /** Validation accuracy at which retraining is enough (default 0.9). */
  target?: number;
  /** Epochs of the fine-tune it prices and follow() runs (default the fine-tune mode's: 5, after 2 warm-up epochs). */
  fineTuneEpochs?: number;
}
const ADVISE_RULES = { ...TRAIN_RULES, target: rule.between(0, 1), fineTuneEpochs: rule.whole(1) };

/** A pair of classes the retrained classifier confuses, both ways, with its share of all mistakes. */
export interface ConfusedPair {
  classes: [string, string];
  mistakes: number;
  share: number;
}

/** One step the advice prices: what it trains, the options that run it, and its predicted time here. */
export interface PricedStep {
  label: string;
  mode: "fine-tune" | "from-scratch";
  options: TrainOptions;
  shape: RunShape;
  seconds: number;
}

/** The pairs of classes that take most of an evaluation's mistakes, each counted both ways, most first. */
export function confusedPairs(evaluation: Evaluation): ConfusedPair[] {
  const { confusion, classes } = evaluation;
  const mistakes = evaluation.misclassified.length;
  const pairs: ConfusedPair[] = [];
  for (let a = 0; a < classes.length; a++) {
    for (let b = a + 1; b < classes.length; b++) {
      const count = confusion[a][b] + confusion[b][a];
      if (count > 0) pairs.push({ classes: [classes[a], classes[b]], mistakes: count, share: count / Math.max(mistakes, 1) });
    }
  }
  return pairs.sort((x, y) => y.mistakes - x.mistakes);
}

/** Images per second this machine decodes `files` at `inputSize` (libvips, the same path training reads them through). */
async function decodeRate(files: string[], inputSize: number): Promise<number> {
  const started = performance.now();
  const { images } = await decodeBatch(files, inputSize);
  images.dispose();
  return files.length / Math.max((performance.now() - started) / 1000, 1e-6);
}

export class Advice extends Displayable {
  constructor(
    readonly inception: Inception,
    readonly data: ImageFolder,
    /** The retraining it ran, and its evaluation on the validation split (what the advice decides by). */
    readonly retrained: TrainingRun,
    readonly validation: Evaluation,
    readonly pairs: ConfusedPair[],
    readonly throughput: Throughput,
    /** Images per second this folder decodes at the network's input size. */
    readonly decodePerSecond: number,
    readonly target: number,
    /** What it recommends: "stop here" (retraining is enough), or a step to run next. */
    readonly recommendation: "stop here" | "fine-tune the top blocks" | "train from scratch",
    /** The step it recommends, or the one to take if more accuracy is wanted after all ("stop here"), priced. */
    readonly next: PricedStep,
    /** The step after that, if the next one falls short, priced. */
    readonly after: PricedStep,
    /** Why, in sentences made from the numbers (claims: their checks go with the output). */
    readonly reasons: Claim[],
    readonly seconds: number,
  ) {
    super();
  }

  /** The smallest number of training images in a class. */
  get fewestPerClass(): number {
    const counts = this.data.counts().train;
    return Math.min(...counts);
  }

  /** Runs the next step as priced (the same options), on the same network and data; resolves to its run. */
  follow(): Promise<TrainingRun> {
    const train = this.next.mode === "fine-tune" ? fineTune : trainFromScratch;
    return train(this.inception, this.data, this.next.options);
  }

  table(): Table {
    const v = this.validation;
    return new Table(
      ["", ""],
      [
        ["ran", `retrain the final layer at ${this.retrained.info.layer}: ${this.retrained.history.epochs.length} epochs in ${this.retrained.info.seconds.toFixed(1)} s`],
        ["validation accuracy", `${v.accuracy.toFixed(3)} on ${v.files.length} images (target ${this.target})`],
        ["mistakes", this.pairs.length ? this.pairs.slice(0, 3).map((p) => `${p.classes.join(" / ")}: ${p.mistakes} (${(p.share * 100).toFixed(0)} %)`).join("; ") : "none"],
        ["measured here", `${this.throughput.device}, ${this.throughput.precision.precision}: ${this.throughput.trainTop.toFixed(1)} images/s training from ${this.throughput.unfreezeFrom} (${this.throughput.trainTopCached.toFixed(1)} after its first epoch, on the frozen blocks' kept output), ${this.throughput.trainAll.toFixed(1)} training everything; decoding ${this.decodePerSecond.toFixed(0)} images/s`],
        ["recommendation", this.recommendation],
        [this.recommendation === "stop here" ? "to go further" : "next", `${this.next.label}: about ${formatDuration(this.next.seconds)} here`],
        ["if that falls short", `${this.after.label}: about ${formatDuration(this.after.seconds)} here`],
      ],
      `Which to use for ${this.data.dir}`,
    );
  }

  toText(): string {
    return `${this.table().toText()}\n${this.reasons.map((r) => r.text).join(" ")}`;
  }

  toHTML(): string {
    return `${this.table().toHTML()}<p>${escapeHtml(this.reasons.map((r) => r.text).join(" "))}</p><p><small>advice.follow() runs the next step with the options it was priced with.</small></p>`;
  }

  toMimeBundle() {
    return { ...super.toMimeBundle(), [CLAIM_MIME]: { text: this.reasons.map((r) => r.text).join(" "), checks: this.reasons.flatMap((r) => r.checks) } };
  }
}

/**
 * Which mode to use for this folder, found the cheap way first: a retraining on cached features, its validation
 * accuracy and confusions, this machine's measured throughput, and the recommended next step with its predicted
 * cost and the reason. Options are the training options of both the retraining and the next step (batch size,
 * seed, precision, layer...), `target` the validation accuracy that is enough, `fineTuneEpochs` the next step's length.
 */
export async function advise(inception: Inception, data: ImageFolder, options: AdviseOptions = {}): Promise<Advice> {
  checkOptions(options, ADVISE_RULES, "advise");
  const started = performance.now();
  const { target = 0.9, fineTuneEpochs = RECIPES["fine-tune"].defaults.epochs, ...training } = options;
  const layer: CutLayer = training.layer ?? inception.source.layer;
  const shared: TrainOptions = { ...training, layer, unfreezeFrom: undefined, warmupEpochs: undefined, warmupLearningRate: undefined, frozenBottomCache: undefined };
  const retrained = await retrainFinalLayer(inception, data, shared);
  const validation = await retrained.evaluate({ split: data.files("validation").length ? "validation" : "train" });
  const pairs = confusedPairs(validation);
  const top = topBlock(layer);
  const batchSize = training.batchSize ?? RECIPES["fine-tune"].defaults.batchSize;
  const throughput = await measureThroughput(inception, { batchSize, unfreezeFrom: top, layer, classes: data.classes.length, precision: training.precision, seed: training.seed, optimizer: training.optimizer });
  const decodePerSecond = await decodeRate(data.files("train").slice(0, 32), inception.inputSize);
  const images = { trainImages: data.files("train").length, validationImages: data.files("validation").length };
  const warmupEpochs = training.warmupEpochs ?? RECIPES["fine-tune"].defaults.warmupEpochs;
  const step = (label: string, mode: "fine-tune" | "from-scratch", unfreezeFrom: CutLayer | "all"): PricedStep => {
    const options: TrainOptions = mode === "fine-tune" ? { ...training, layer, unfreezeFrom, epochs: fineTuneEpochs, warmupEpochs } : { ...training, layer, epochs: RECIPES["from-scratch"].defaults.epochs };
    // The retraining above cached the features the warm-up trains on.
    const shape: RunShape = { mode, unfreezeFrom, ...images, epochs: options.epochs!, warmupEpochs: mode === "fine-tune" ? warmupEpochs : 0, featuresCached: true, decodePerSecond };
    return { label, mode, options, shape, seconds: predictRun(throughput, shape).seconds };
  };
  const fineTop = step(`fine-tune ${top} to ${layer} (${fineTuneEpochs} epochs after ${warmupEpochs} warm-up epochs)`, "fine-tune", top);
  const fineAll = step(`fine-tune everything, stem to ${layer} (${fineTuneEpochs} epochs after ${warmupEpochs} warm-up epochs)`, "fine-tune", "all");
  const scratch = step(`train from scratch, stem to ${layer} (${RECIPES["from-scratch"].defaults.epochs} epochs)`, "from-scratch", "all");
  const counts = data.counts().train;
  const fewest = Math.min(...counts);
  const chance = 1 / data.classes.length;
  const n = Math.max(validation.files.length, 1);
  const spread = accuracyStandardError(validation.accuracy, n);
  const accuracyText = `Retraining the final layer reached ${validation.accuracy.toFixed(2)} validation accuracy (give or take ${spread.toFixed(2)} on ${n} images, Agresti-Coull; chance ${chance.toFixed(2)})`;
  const accuracyChecks: Check[] = [
    { what: "validation accuracy", value: validation.accuracy, atLeast: 0, atMost: 1 },
    { what: "its standard error", value: spread, atLeast: 0 },
    { what: "validation images", value: n, atLeast: 1 },
    { what: "chance", value: chance },
  ];
  const concentrated = pairs.length > 0 && pairs[0].share >= 0.5 ? pairs.filter((p) => p.share >= 0.2).slice(0, 3) : [];
  const pairShare = concentrated.reduce((s, p) => s + p.share, 0);
  const whereText =
    validation.misclassified.length === 0
      ? ""
      : concentrated.length
        ? `; ${(pairShare * 100).toFixed(0)} % of its ${validation.misclassified.length} mistakes are between ${concentrated.map((p) => p.classes.join(" and ")).join(", ")}: classes the frozen features put close together`
        : `; its ${validation.misclassified.length} mistakes spread over ${pairs.length} pairs of classes`;
  const whereChecks: Check[] = validation.misclassified.length === 0 ? [] : [{ what: "mistakes", value: validation.misclassified.length, atLeast: 1 }, ...(concentrated.length ? [{ what: "share of the mistakes in those pairs", value: pairShare, atLeast: 0.5, atMost: 1 }] : [{ what: "pairs confused", value: pairs.length, atLeast: 1 }])];
  const perClass = `The folder has ${fewest} to ${Math.max(...counts)} training images per class`;
  const perClassChecks: Check[] = [{ what: "fewest training images in a class", value: fewest }, { what: "most training images in a class", value: Math.max(...counts) }];
  const cost = (s: PricedStep): Check => ({ what: `predicted seconds of ${s.label}`, value: s.seconds, atLeast: 0 });
  let recommendation: Advice["recommendation"];
  let reasons: Claim[];
  let next: PricedStep;
  let after: PricedStep;
  if (validation.accuracy >= target) {
    recommendation = "stop here";
    next = fineTop;
    after = fineAll;
    reasons = [
      claim(`${accuracyText}${whereText}, at or above the target of ${target}: the pretrained features fit this folder, and retraining the final layer on them is enough.`, ...accuracyChecks, ...whereChecks, { what: "target", value: target, stated: false }, { what: "validation accuracy against the target", value: validation.accuracy, atLeast: target, stated: false }),
      claim(`To go further, ${fineTop.label} would take about ${formatDuration(fineTop.seconds)} here.`, cost(fineTop)),
    ];
  } else if (fewest >= FROM_SCRATCH_MIN_PER_CLASS && validation.accuracy <= chance + 2 * guessSpread(chance, n)) {
    recommendation = "train from scratch";
    next = scratch;
    after = fineAll;
    reasons = [
      claim(`${accuracyText}${whereText}: at chance, so the pretrained features carry nothing of this task.`, ...accuracyChecks, ...whereChecks),
      claim(`${perClass}, at least the ${FROM_SCRATCH_MIN_PER_CLASS} per class that training from scratch needs: ${scratch.label} would take about ${formatDuration(scratch.seconds)} here.`, ...perClassChecks, { what: "the least per class from scratch needs", value: FROM_SCRATCH_MIN_PER_CLASS }, cost(scratch)),
    ];
  } else {
    recommendation = "fine-tune the top blocks";
    next = fineTop;
    after = fineAll;
    reasons = [
      claim(`${accuracyText}${whereText}, short of the target of ${target}: the frozen features fall short here.`, ...accuracyChecks, ...whereChecks, { what: "target", value: target, stated: false }, { what: "validation accuracy against the target", value: validation.accuracy, below: target, word: "short of the target", stated: false }),
      claim(`Fine-tuning trains the blocks that compute them: ${fineTop.label} would take about ${formatDuration(fineTop.seconds)} here, and if that falls short, ${fineAll.label} about ${formatDuration(fineAll.seconds)}.`, cost(fineTop), cost(fineAll)),
      claim(
        `${perClass}: ${fewest >= FROM_SCRATCH_MIN_PER_CLASS ? "enough to try training from scratch too, though a pretrained start still helps" : `too few to train from scratch (it needs thousands per class; ${FROM_SCRATCH_MIN_PER_CLASS} at the least)`}.`,
        ...perClassChecks,
        ...(fewest >= FROM_SCRATCH_MIN_PER_CLASS ? [] : [{ what: "the least per class from scratch needs", value: FROM_SCRATCH_MIN_PER_CLASS }, { what: "fewest per class against it", value: fewest, below: FROM_SCRATCH_MIN_PER_CLASS, word: "too few", stated: false }]),
      ),
    ];
  }
  return new Advice(inception, data, retrained, validation, pairs, throughput, decodePerSecond, target, recommendation, next, after, reasons, (performance.now() - started) / 1000);
}
