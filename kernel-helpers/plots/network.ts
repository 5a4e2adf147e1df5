// What one training step computes in each mode, block by block, as a picture: drawn from the same
// plans the training functions follow (train/modes/recipes.ts).
import { checkOptions, rule } from "../util/options";
import { Displayable, escapeHtml } from "../display/display";
import { type CompareEntry, defaultEntries, entryPlan, topBlock } from "../lab/compare";
import type { Distortions } from "../data/augment";
import { type CutLayer, CUT_LAYERS } from "../network/inception";
import type { Inception } from "../network/model";
import type { Role } from "../train/modes/recipes";

/** What one training step computes in each mode, block by block, as a picture. */
export class NetworkDiagram extends Displayable {
  constructor(
    readonly blocks: { block: string; parameters: number; gflops: number }[],
    readonly rows: { label: string; roles: Role[] }[],
  ) {
    super();
  }

  toText(): string {
    const header = this.blocks.map((b) => b.block.padEnd(8)).join(" ");
    return [`${"".padEnd(24)} ${header}`, ...this.rows.map((r) => `${r.label.padEnd(24)} ${r.roles.map((x) => x.padEnd(8)).join(" ")}`)].join("\n");
  }

  toHTML(): string {
    const fill = { cached: "#c6dbef", frozen: "#9ecae1", trained: "#fd8d3c", unused: "#f0f0f0" };
    const w = 62;
    const left = 190;
    const rowHeight = 46;
    const width = left + this.blocks.length * w + 10;
    const height = 60 + this.rows.length * rowHeight + 50;
    const header = this.blocks
      .map((b, i) => `<text x="${left + i * w + w / 2}" y="20" text-anchor="middle" font-size="11" font-weight="bold">${b.block}</text><text x="${left + i * w + w / 2}" y="34" text-anchor="middle" font-size="9">${(b.parameters / 1e6).toFixed(2)}M</text><text x="${left + i * w + w / 2}" y="46" text-anchor="middle" font-size="9">${b.gflops.toFixed(2)} GF</text>`)
      .join("");
    const rows = this.rows
      .map((r, j) => {
        const y = 56 + j * rowHeight;
        return `<text x="4" y="${y + 24}" font-size="12">${escapeHtml(r.label)}</text>` + r.roles.map((role, i) => `<rect x="${left + i * w + 2}" y="${y}" width="${w - 4}" height="${rowHeight - 10}" rx="4" fill="${fill[role]}" stroke="#555" stroke-width="0.5"><title>${role}</title></rect>`).join("");
      })
      .join("");
    const legendY = height - 26;
    const legend = (
      [
        ["cached", "forward once per image, output kept"],
        ["frozen", "forward every step, frozen"],
        ["trained", "forward and backward every step"],
        ["unused", "not part of the classifier"],
      ] as const
    )
      .map(([role, text], i) => `<rect x="${4 + i * 200}" y="${legendY}" width="14" height="14" fill="${fill[role]}" stroke="#555" stroke-width="0.5"/><text x="${22 + i * 200}" y="${legendY + 11}" font-size="11">${text}</text>`)
      .join("");
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(width, 820)}" height="${height}" font-family="sans-serif">${header}${rows}${legend}</svg>`;
  }
}

/** Inception-v3's blocks with parameters and FLOPs, coloured by what each mode does with them in a step. */
export function network(inception: Inception, options: { layer?: CutLayer; unfreezeFrom?: CutLayer; classes?: number; distortions?: Distortions } = {}): NetworkDiagram {
  checkOptions(options, { layer: rule.oneOf(CUT_LAYERS), unfreezeFrom: rule.oneOf(CUT_LAYERS), classes: rule.whole(2), distortions: rule.object() }, "plot.network");
  const layer = options.layer ?? inception.source.layer;
  const bodies = inception.summary().blocks.filter((b) => b.block !== "top");
  const width = (inception.model.getLayer(layer).outputShape as number[])[3];
  const classes = options.classes ?? 5;
  const head = { block: "new head", parameters: width * classes + classes, gflops: (2 * width * classes) / 1e9 };
  const rowFor = (entry: CompareEntry) => {
    const { plan, label } = entryPlan(entry, layer, { distortions: options.distortions });
    return { label, roles: [...plan.roles.map((r) => r.role), "trained" as const] };
  };
  return new NetworkDiagram([...bodies, head], defaultEntries(options.unfreezeFrom ?? topBlock(layer)).map(rowFor));
}
