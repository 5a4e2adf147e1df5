// The bench's accuracy record (lab/bench-record.ts), which notebook 3 shows where bfloat16 is emulated: the
// repository's own record reads back whole, and a damaged copy is refused with the file named, never shown.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { BENCH_RESULTS, benchAccuracyRecord } from "../../kernel-helpers/lab/bench-record";
import { scratch } from "../helpers";

test("the repository's record holds every seed of both modes at both precisions, and where it was measured", () => {
  const record = benchAccuracyRecord();
  assert.ok(record.seeds.length >= 2);
  for (const mode of ["fine-tune", "retrain-final-layer"] as const)
    for (const precision of ["float32", "bfloat16"] as const) {
      const accuracies = record.accuracies(mode, precision);
      assert.equal(accuracies.length, record.seeds.length);
      assert.ok(accuracies.every((a) => a >= 0 && a <= 1));
      assert.ok(record.seconds(mode, precision).every((s) => s > 0));
    }
  assert.match(record.measuredOn.date, /^\d{4}-\d\d-\d\d/);
  assert.ok(record.measuredOn.machine.length > 0);
});

test("a damaged record is refused with the file named and how to record it again", () => {
  const folder = scratch("bench-record");
  const good = JSON.parse(fs.readFileSync(BENCH_RESULTS, "utf8"));
  const write = (name: string, content: string) => {
    const file = path.join(folder, name);
    fs.writeFileSync(file, content);
    return file;
  };
  const damaged = (name: string, change: (results: typeof good) => void) => {
    const results = structuredClone(good);
    change(results);
    return write(name, JSON.stringify(results));
  };
  const refused = (file: string, why: RegExp) => assert.throws(() => benchAccuracyRecord(file).accuracies("fine-tune", "bfloat16"), (e: Error) => e.message.includes(file) && why.test(e.message) && /BENCH_ONLY=accuracy npm run bench/.test(e.message));
  refused(path.join(folder, "absent.json"), /not found/);
  refused(write("truncated.json", fs.readFileSync(BENCH_RESULTS, "utf8").slice(0, 500)), /not valid JSON/);
  refused(damaged("no-section.json", (r) => delete r.accuracy), /no accuracy section/);
  refused(damaged("over-one.json", (r) => (r.accuracy.runs[0].accuracy = 1.2)), /malformed/);
  refused(damaged("missing-seed.json", (r) => (r.accuracy.runs = r.accuracy.runs.filter((run: { mode: string; precision: string; seed: number }) => !(run.mode === "fine-tune" && run.precision === "bfloat16" && run.seed === r.accuracy.seeds[0])))), /0 runs of fine-tune at bfloat16 with seed/);
  refused(damaged("twice.json", (r) => r.accuracy.runs.push(r.accuracy.runs[0])), /2 runs of/);
  refused(damaged("no-provenance.json", (r) => delete r.measuredOn), /where its accuracy section was measured/);
});
