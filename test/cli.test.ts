// The command line as a user runs it (node_modules/.bin/inception-lab, a child process): retrain.py's plain
// command works with its defaults, what the flags become is printed before training, every bad flag and
// every output that could not be written ends it with exit 2 before any image is read, and nothing the user
// made is replaced.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { spawn, spawnSync } from "child_process";
import { syntheticShapes } from "inception-lab";
import type { ImageFolder } from "inception-lab";
import { root, scratch } from "./helpers";

const SIZE = "75";
const cache = scratch("cli-cache");
// Offline whatever the machine: the ImageNet weights are never in this cache and their address answers nothing.
const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", INCEPTION_LAB_CACHE: cache, INCEPTION_LAB_WEIGHTS_URL: "http://127.0.0.1:9/" };
const bin = path.join(root, "node_modules", ".bin", "inception-lab");
const cli = (args: string[], cwd = root) => spawnSync(bin, args, { encoding: "utf8", env, cwd });
/** The same, without waiting: two commands at once. */
const cliAsync = (args: string[], cwd: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(bin, args, { env, cwd });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });

let photos: ImageFolder | null = null;
const data = async () => (photos ??= await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, dir: path.join(scratch("cli-data"), "photos") }));
const epochLines = (stdout: string) => stdout.split("\n").filter((line) => line.startsWith("Epoch "));

test("the plainest retrain.py command (--image_dir only) trains with retrain.py's defaults, saying what they became", async () => {
  const { dir, classes } = await data();
  const run = cli(["--image_dir", dir]);
  assert.equal(run.status, 0, run.stderr);
  assert.doesNotMatch(run.stdout + run.stderr, /NaN|undefined/);
  assert.match(run.stdout, /Data: 3 classes, 24 images in .* \(18 training, 3 validation, 3 test\)/);
  assert.match(run.stdout, /Weights: bundled \(nsfwjs .*\), because the ImageNet weights are not in the cache and cannot be downloaded now.*fine-tuned for a 5-class content-moderation task/);
  assert.match(run.stdout, /input 299x299 \(the default/);
  assert.match(run.stdout, /Precision: (bfloat16|float32|float16) \(.+\)/);
  assert.match(run.stdout, /4000 steps \(--how_many_training_steps, retrain.py's default\): 18 training images in batches of 100 make 1 step per epoch, so 4000 epochs = 4000 steps/);
  assert.match(run.stdout, /plain gradient descent at learning rate 0\.01, batch 100: retrain.py's defaults/);
  const lines = epochLines(run.stdout);
  assert.ok(lines.length <= 101, `${lines.length} epoch lines`);
  assert.match(lines[lines.length - 1], /^Epoch 4000\/4000 \(head\): train accuracy = [\d.]+%, cross entropy = [\d.]+, validation accuracy = [\d.]+%, [\d.]+ s since start$/);
  assert.match(run.stdout, /Final test accuracy = [\d.]+% \(N=3\)/);
  assert.equal(classes.length, 3);
});

test("--help documents the modes, the warm-up, the seed, the input size and the precision", () => {
  const help = cli(["--help"]);
  assert.equal(help.status, 0);
  for (const flag of ["--image_dir", "--how_many_training_steps", "--learning_rate", "--testing_percentage", "--validation_percentage", "--train_batch_size", "--bottleneck_dir", "--print_misclassified_test_images", "--flip_left_right", "--random_crop", "--random_scale", "--random_brightness", "--saved_model_dir", "--keras_dir", "--output_dir", "--output_labels", "--output_split", "--summaries_dir", "--unfreeze_from", "--warmup_epochs", "--seed", "--input_size"]) {
    assert.ok(help.stdout.includes(flag), `--help lists ${flag}`);
  }
  assert.match(help.stdout, /--mode VALUE\n\s+retrain-final-layer, fine-tune, from-scratch/);
  assert.match(help.stdout, /--precision VALUE\n\s+auto, float32, bfloat16, float16/);
  assert.match(help.stdout, /default 4000 for retrain-final-layer/);
});

test("a fine-tune says its warm-up epochs and runs exactly what it said; steps become whole epochs, said exactly; the outputs are written", async () => {
  const { dir, classes } = await data();
  const out = scratch("cli-outputs");
  const tuned = cli(["--image_dir", dir, "--input_size", SIZE, "--mode", "fine-tune", "--unfreeze_from", "mixed7", "--epochs", "1", "--train_batch_size", "8", "--keras_dir", path.join(out, "keras")]);
  assert.equal(tuned.status, 0, tuned.stderr);
  assert.match(tuned.stdout, /first 2 warm-up epochs \(6 steps\) train the new classifier alone on cached features \(--warmup_epochs; 0 skips them\), then the network from mixed7 up, 1 epoch = 3 steps: .*; 3 epochs in all/);
  assert.deepEqual(epochLines(tuned.stdout).map((line) => line.split(":")[0]), ["Epoch 1/3 (warm-up)", "Epoch 2/3 (warm-up)", "Epoch 3/3 (fine-tune)"]);
  assert.ok(fs.existsSync(path.join(out, "keras", "model.keras")));
  const noWarmup = cli(["--image_dir", dir, "--input_size", SIZE, "--mode", "fine-tune", "--unfreeze_from", "mixed7", "--epochs", "1", "--train_batch_size", "8", "--warmup_epochs", "0"]);
  assert.equal(noWarmup.status, 0, noWarmup.stderr);
  assert.match(noWarmup.stdout, /Training: the network from mixed7 up, 1 epoch = 3 steps/);
  assert.doesNotMatch(noWarmup.stdout, /warm-up/);
  assert.deepEqual(epochLines(noWarmup.stdout).map((line) => line.split(":")[0]), ["Epoch 1/1 (fine-tune)"]);

  const args = ["--image_dir", dir, "--input_size", SIZE, "--how_many_training_steps", "7", "--train_batch_size", "5", "--seed", "3"];
  const outputs = ["--output_dir", path.join(out, "model"), "--output_labels", path.join(out, "labels.txt"), "--output_split", path.join(out, "split.csv"), "--print_misclassified_test_images"];
  const retrained = cli([...args, ...outputs]);
  assert.equal(retrained.status, 0, retrained.stderr);
  assert.match(retrained.stdout, /7 steps \(--how_many_training_steps\): 18 training images in batches of 5 make 4 steps per epoch, so 2 epochs = 8 steps \(the nearest whole number of epochs\)/);
  assert.equal(epochLines(retrained.stdout).length, 2);
  assert.match(retrained.stdout, /=== MISCLASSIFIED TEST IMAGES ===/);
  assert.ok(fs.existsSync(path.join(out, "model", "model.json")));
  assert.equal(fs.readFileSync(path.join(out, "labels.txt"), "utf8"), classes.join("\n") + "\n");
  const rows = fs.readFileSync(path.join(out, "split.csv"), "utf8").trim().split("\n");
  const photos = await data();
  assert.equal(rows[0], "path,label,class,split");
  assert.deepEqual(rows.slice(1), photos.examples().map((e) => `${e.path},${e.label},${classes[e.label]},${e.split}`));

  // The same command again: the labels and split files hold exactly what it writes, so it works.
  const again = cli([...args, ...outputs]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /Unchanged: .*labels\.txt/);
  // --seed: the same seed trains the same numbers again, another seed other numbers.
  const numbers = (stdout: string) => [...epochLines(stdout).map((line) => line.replace(/, [\d.]+ s since start$/, "")), /Final test accuracy.*/.exec(stdout)![0]];
  assert.deepEqual(numbers(again.stdout), numbers(retrained.stdout));
  const otherSeed = cli([...args.slice(0, -1), "4"]);
  assert.equal(otherSeed.status, 0, otherSeed.stderr);
  assert.notDeepEqual(numbers(otherSeed.stdout), numbers(retrained.stdout));
});

test("bad flags exit 2 before any work, naming the flag and what it takes", async () => {
  const { dir } = await data();
  const bottlenecks = scratch("cli-bad-flags-cache");
  const cases: [string[], RegExp][] = [
    [["--epochs", "0"], /--epochs is "0": give a whole number of at least 1/],
    [["--how_many_training_steps=-5"], /--how_many_training_steps is "-5": give a whole number of at least 1/],
    [["--learning_rate", "-1"], /Option '--learning_rate' argument is ambiguous\. \(a value that starts with "-" reads as a flag: write --learning_rate=VALUE\)/],
    [["--testing_percentage", "150"], /--testing_percentage is "150": give a number from 0 to below 100/],
    [["--testing_percentage", "60", "--validation_percentage", "50"], /--testing_percentage 60 and --validation_percentage 50 leave no image for training/],
    [["--learning_rate", "0"], /--learning_rate is "0": give a number above 0/],
    [["--train_batch_size", "2.5"], /--train_batch_size is "2.5": give a whole number/],
    [["--input_size", "50"], /--input_size is "50": give a whole number from 75 to \d+/],
    [["--random_crop", "lots"], /--random_crop is "lots": give a number from 0 to 100/],
    [["--seed", "1.5"], /--seed is "1.5"/],
    [["--epochs", "2", "--how_many_training_steps", "100"], /--epochs and --how_many_training_steps both say how long to train: give one of them/],
    [["--mode", "retrain"], /--mode is "retrain": did you mean --mode retrain-final-layer\?/],
    [["--mode", "scratch"], /--mode is "scratch": did you mean --mode from-scratch\?/],
    [["--unfreeze_from", "mixed7"], /--unfreeze_from is for --mode fine-tune .*--mode is retrain-final-layer: drop --unfreeze_from or change --mode/],
    [["--warmup_epochs", "1"], /--warmup_epochs is for --mode fine-tune/],
    [["--mode", "from-scratch", "--weights", "bundled"], /--weights is for --mode retrain-final-layer or --mode fine-tune/],
    [["--mode", "fine-tune", "--unfreeze_from", "mixed11"], /--unfreeze_from is "mixed11": use "all" or one of mixed0/],
    [["--precision", "half"], /--precision is "half": use auto, float32, bfloat16, float16/],
    [["--weights", "nowhere.h5"], /--weights: .*nowhere\.h5 is not a file/],
    [["--tfhub_module", "https://tfhub.dev/google/imagenet/inception_v3/feature_vector/3"], /--tfhub_module is not taken: .*Use --weights imagenet .*--weights bundled/],
    [["--learning_rat", "0.1"], /Unknown option '--learning_rat'\. Did you mean --learning_rate\? npx inception-lab --help lists the flags/],
  ];
  for (const [args, message] of cases) {
    const run = cli(["--image_dir", dir, "--bottleneck_dir", bottlenecks, ...args]);
    assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(" "));
    assert.equal(run.stdout, "", `${args.join(" ")}: nothing done`);
  }
  assert.deepEqual(fs.readdirSync(bottlenecks), [], "no image was read");
  const missing = cli(["--image_dir", path.join(bottlenecks, "nowhere")]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--image_dir: .*nowhere is not a folder/);
  assert.match(cli([]).stderr, /--image_dir is required/);
});

test("outputs that could not be written end the command with exit 2 before any image is read, and the user's files stay as they were", async () => {
  const { dir } = await data();
  const place = scratch("cli-occupied");
  const bottlenecks = path.join(place, "cache");
  const mine = path.join(place, "mine");
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, "thesis.txt"), "my own work");
  const notes = path.join(place, "notes.txt");
  fs.writeFileSync(notes, "my notes\n");
  const logs = path.join(place, "logs", "run-1");
  fs.mkdirSync(logs, { recursive: true });
  fs.writeFileSync(path.join(logs, "events.out.tfevents.1700000000.host.1.0.v2"), "an earlier run's log");
  const cases: [string[], RegExp][] = [
    [["--keras_dir", mine], /--keras_dir: .*mine holds files Inception Lab did not write \(thesis\.txt\)/],
    [["--saved_model_dir", mine], /--saved_model_dir: .*mine holds files Inception Lab did not write/],
    [["--output_dir", mine], /--output_dir: .*mine holds files Inception Lab did not write/],
    [["--output_labels", notes], /--output_labels: .*notes\.txt exists with other contents \(9 bytes\), and it is never replaced: give a new file name/],
    [["--output_split", notes], /--output_split: .*notes\.txt exists with other contents/],
    [["--output_labels", mine], /--output_labels: .*mine is a folder: give the name of a file/],
    [["--keras_dir", path.join(place, "out"), "--saved_model_dir", path.join(place, "out"), "--output_dir", path.join(place, "out")], /--output_dir and --keras_dir both name .*out: give each its own folder/],
    [["--output_dir", path.join(place, "model"), "--output_labels", path.join(place, "model", "labels.txt")], /--output_labels \(.*labels\.txt\) lies inside the folder of --output_dir/],
    [["--keras_dir", path.join(notes, "keras")], /--keras_dir: .*notes\.txt is a file, so .*keras cannot be made: give a path in a folder/],
    [["--summaries_dir", logs], /--summaries_dir: .*run-1 already holds a run's TensorBoard log \(events\.out\.tfevents\.1700000000\.host\.1\.0\.v2\).*such as .*run-2/],
    [["--summaries_dir", notes], /--summaries_dir: .*notes\.txt is a file, not a folder/],
    [["--bottleneck_dir", notes], /--bottleneck_dir: .*notes\.txt is a file, so|--bottleneck_dir: .*notes\.txt is a file, not a folder/],
  ];
  for (const [args, message] of cases) {
    const run = cli(["--image_dir", dir, "--input_size", SIZE, ...(args.includes("--bottleneck_dir") ? [] : ["--bottleneck_dir", bottlenecks]), ...args]);
    assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(" "));
    assert.doesNotMatch(run.stdout, /Data:|Epoch/, `${args.join(" ")}: nothing done`);
  }
  assert.ok(!fs.existsSync(bottlenecks) || fs.readdirSync(bottlenecks).length === 0, "no image was read");
  assert.deepEqual(fs.readdirSync(mine), ["thesis.txt"]);
  assert.equal(fs.readFileSync(path.join(mine, "thesis.txt"), "utf8"), "my own work");
  assert.equal(fs.readFileSync(notes, "utf8"), "my notes\n");
  assert.deepEqual(fs.readdirSync(logs), ["events.out.tfevents.1700000000.host.1.0.v2"]);
  assert.ok(!fs.existsSync(path.join(place, "out")) && !fs.existsSync(path.join(place, "model")));
});

test("a repeated command with --saved_model_dir works", async () => {
  const { dir } = await data();
  const out = scratch("cli-repeat-savedmodel");
  const args = ["--image_dir", dir, "--input_size", SIZE, "--how_many_training_steps", "10", "--saved_model_dir", path.join(out, "savedmodel")];
  const first = cli(args);
  assert.equal(first.status, 0, first.stderr);
  assert.ok(fs.existsSync(path.join(out, "savedmodel", "saved_model.pb")));
  const second = cli(args);
  assert.equal(second.status, 0, second.stderr);
});

test("--weights imagenet offline fails with the command line's advice (--weights bundled), before any image is read", async () => {
  const { dir } = await data();
  const bottlenecks = scratch("cli-offline-cache");
  const run = cli(["--image_dir", dir, "--weights", "imagenet", "--bottleneck_dir", bottlenecks]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /--weights imagenet: the ImageNet weights are not in the cache and cannot be downloaded now \(offline\?\)\. Use --weights bundled/);
  assert.doesNotMatch(run.stderr, /weights: "bundled"/);
  assert.deepEqual(fs.readdirSync(bottlenecks), []);
});

test("TensorBoard: the command prints how to view its logs; a folder that holds a run, or that another run is writing now, gets no second run", async () => {
  const { dir } = await data();
  const elsewhere = scratch("cli-tensorboard");
  const logs = path.join(elsewhere, "logs");
  const args = (run: string) => ["--image_dir", dir, "--input_size", SIZE, "--how_many_training_steps", "30", "--summaries_dir", path.join(logs, run)];
  const both = await Promise.all([cliAsync(args("run-1"), elsewhere), cliAsync(args("run-1"), elsewhere)]);
  const events = fs.readdirSync(path.join(logs, "run-1")).filter((name) => name.startsWith("events.out.tfevents."));
  assert.equal(events.length, 1, `one events file, not ${events.join(", ")}`);
  const logged = both.filter((run) => run.stdout.includes("TensorBoard: "));
  assert.equal(logged.length, 1, both.map((run) => run.stdout + run.stderr).join("\n----\n"));
  assert.equal(logged[0].status, 0, logged[0].stderr);
  assert.ok(logged[0].stdout.includes(`TensorBoard: npm --prefix ${root} run tensorboard -- ${path.join(logs, "run-1")}`), logged[0].stdout);
  // The other was refused before any work (exit 2), or, started at the same moment, trained without a log.
  const other = both.find((run) => run !== logged[0])!;
  assert.match(other.stderr, /already holds a run's TensorBoard log|another run is writing its TensorBoard log/, other.stderr);
  assert.ok(other.status === 2 || (other.status === 0 && /no TensorBoard log for this run/.test(other.stderr)), `${other.status}: ${other.stderr}`);
  assert.ok(!fs.existsSync(path.join(logs, "run-1.lock")), "the lock is gone");
  const fromProject = cli(args("run-2"), root);
  assert.equal(fromProject.status, 0, fromProject.stderr);
  assert.ok(fromProject.stdout.includes(`TensorBoard: npm run tensorboard -- ${path.relative(root, path.join(logs, "run-2"))}`), fromProject.stdout);
});

test("300 classes of 2 images give one warning line, not 300", () => {
  const many = path.join(scratch("cli-many-classes"), "photos");
  const jpeg = tinyJpeg();
  for (let c = 0; c < 300; c++) {
    fs.mkdirSync(path.join(many, `class${c}`), { recursive: true });
    for (let i = 0; i < 2; i++) fs.writeFileSync(path.join(many, `class${c}`, `image${i}.jpg`), jpeg);
  }
  const notes = path.join(many, "..", "notes.txt");
  fs.writeFileSync(notes, "mine");
  // Stops right after listing the folder (the labels file is the user's): the warnings are what it said.
  const run = cli(["--image_dir", many, "--output_labels", notes]);
  // Failure messages kept short: Node 20's test runner takes minutes to parse a 30 kB one.
  assert.equal(run.status, 2, run.stderr.slice(-1000));
  const warnings = run.stderr.split("\n").filter((line) => line.startsWith("imageFolder:"));
  assert.equal(warnings.length, 1, `${warnings.length} warning lines, the first: ${warnings.slice(0, 3).join("\n")}`);
  assert.match(warnings[0], /^imageFolder: classes "class0" \(2\), "class1" \(2\), "class10" \(2\) and 297 more \(300 in all\) have fewer than 20 images each: expect unreliable accuracy\.$/);
});

/** The smallest JPEG header the folder check accepts (it reads the signature, not the image). */
function tinyJpeg(): Buffer {
  return Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9]);
}

test("a folder no image of which reads ends with exit 1, saying why, and writes nothing; input sizes past the machine's memory and hex numbers are bad flags", async () => {
  const dir = path.join(scratch("cli-truncated"), "photos");
  const made = await syntheticShapes({ classes: 2, perClass: 6, imageSize: 48, seed: 2, dir });
  for (const file of made.files()) fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 40));
  const out = scratch("cli-nothing-written");
  const run = cli(["--image_dir", dir, "--input_size", SIZE, "--how_many_training_steps", "5", "--output_dir", path.join(out, "model"), "--output_labels", path.join(out, "labels.txt")]);
  assert.equal(run.status, 1, run.stdout);
  assert.match(run.stderr, /no training image could be read, so nothing was trained/);
  assert.doesNotMatch(run.stdout + run.stderr, /NaN/);
  assert.deepEqual(fs.readdirSync(out), [], "no model, no labels");
  for (const [value, pattern] of [["100000", /--input_size is "100000": give a whole number from 75 to \d+/], ["0x4b", /--input_size is "0x4b": give a whole number/]] as const) {
    const bad = cli(["--image_dir", dir, "--input_size", value]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, pattern);
  }
});

test("skipped files get one line; Ctrl-C writes the best epoch so far, says so, and exits 130", async () => {
  const dir = path.join(scratch("cli-interrupt"), "photos");
  const made = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, seed: 9, dir });
  for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(made.dir, made.classes[0], `empty-${i}.jpg`), "");
  const out = path.join(scratch("cli-interrupt-out"), "model");
  const child = spawn(bin, ["--image_dir", dir, "--input_size", SIZE, "--epochs", "400", "--output_dir", out], { env });
  let stdout = "";
  let stderr = "";
  let sent = false;
  child.stdout.on("data", (d) => {
    stdout += d;
    if (!sent && /^Epoch 8\//m.test(stdout)) {
      sent = true;
      child.kill("SIGINT");
    }
  });
  child.stderr.on("data", (d) => (stderr += d));
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.match(stdout, /Skipped: 30 files \(30 empty file \(0 bytes\)\)/);
  assert.equal(status, 130, `${stdout}\n${stderr}`);
  assert.match(stdout, /Interrupted: the outputs below hold the weights of the best epoch so far \(epoch \d+ of \d+\), not a finished run/);
  assert.ok(fs.existsSync(path.join(out, "model.json")), "the model kept is written");
});
