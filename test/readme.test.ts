// The README's examples run as written: the bash blocks of "The command line" and "Continue in Python",
// line by line (a heredoc with its body), from a temporary folder outside the project with a small
// generated `photos/`. Paths aside: `npx inception-lab` is the project's node_modules/.bin/inception-lab (npx
// does not resolve outside the project), `.venv/bin/` the project's venv, and `npm run tensorboard -- X` the
// script npm runs after setup (scripts/tensorboard.sh, with INIT_CWD as npm sets it), checked by asking the
// TensorBoard it starts which runs it sees. A small budget: --input_size 75 and a few steps or one epoch.
// Only `docker run` lines are skipped.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { spawn, spawnSync } from "child_process";
import { syntheticShapes } from "inception-lab";
import { root, scratch } from "./helpers";

const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");

/** The ```bash blocks of one "## " section of the README. */
function bashBlocks(section: string): string[] {
  const start = readme.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `README has a "## ${section}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return [...readme.slice(start, end < 0 ? undefined : end).matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** A block's commands: one per line, a heredoc together with its body. */
function commands(block: string): string[] {
  const result: string[] = [];
  const lines = block.split("\n").filter((line) => line.trim() !== "");
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /<<'?(\w+)'?/.exec(lines[i]);
    if (!heredoc) {
      result.push(lines[i]);
      continue;
    }
    const end = lines.indexOf(heredoc[1], i + 1);
    assert.ok(end > i, `the heredoc of "${lines[i]}" ends`);
    result.push(lines.slice(i, end + 1).join("\n"));
    i = end;
  }
  return result;
}

/** The command line's flags with a small budget: the README's values replaced, or added. */
function withBudget(line: string): string {
  const budget: Record<string, string> = { input_size: "75", ...(/--epochs /.test(line) ? { epochs: "1" } : { how_many_training_steps: "20" }) };
  let result = line;
  for (const [flag, value] of Object.entries(budget)) {
    const given = new RegExp(`--${flag} \\S+`);
    result = given.test(result) ? result.replace(given, `--${flag} ${value}`) : `${result} --${flag} ${value}`;
  }
  return result;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

async function runBlock(block: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const outputs: string[] = [];
  for (const command of commands(block)) {
    if (command.startsWith("docker run ")) continue;
    const tensorboard = /^npm run tensorboard -- (\S+)\s*(#.*)?$/.exec(command);
    if (tensorboard) {
      outputs.push(await runsTensorBoardSees(tensorboard[1], cwd, env));
      continue;
    }
    const asRun = (command.startsWith("npx inception-lab ") ? withBudget(command) : command)
      .replace(/^npx inception-lab /, `${path.join(root, "node_modules", ".bin", "inception-lab")} `)
      .replace(/^\.venv\/bin\//, `${path.join(root, ".venv", "bin")}/`);
    const result = spawnSync("bash", ["-c", asRun], { cwd, env, encoding: "utf8" });
    assert.equal(result.status, 0, `${command}\n${result.stdout}\n${result.stderr}`);
    outputs.push(result.stdout);
  }
  return outputs;
}

/** Starts TensorBoard as `npm run tensorboard -- logdir` would, run in `cwd`, and returns the runs it lists. */
async function runsTensorBoardSees(logdir: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const port = await freePort();
  const server = spawn("bash", [path.join(root, "scripts", "tensorboard.sh"), logdir], { cwd: root, env: { ...env, INIT_CWD: cwd, PORT: String(port) }, detached: true, stdio: "ignore" });
  try {
    for (let waited = 0; waited < 90_000; waited += 500) {
      const runs = await fetch(`http://127.0.0.1:${port}/data/runs`).then((r) => r.text()).catch(() => null);
      if (runs && runs !== "[]") return runs;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    throw new Error(`TensorBoard on ${logdir} listed no run within 90 s`);
  } finally {
    process.kill(-server.pid!, "SIGTERM");
  }
}

test("the README's command-line and Python examples run as written, and meet", async () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "inception-lab-readme-"));
  try {
    const photos = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, dir: path.join(cwd, "photos") });
    const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", INCEPTION_LAB_CACHE: scratch("readme-cache") };

    const [commandLine] = bashBlocks("The command line");
    const [retrained, tuned, runs] = await runBlock(commandLine, cwd, env);
    assert.equal(fs.readFileSync(path.join(cwd, "labels.txt"), "utf8"), photos.classes.join("\n") + "\n");
    assert.ok(fs.existsSync(path.join(cwd, "export", "saved_model.pb")), retrained);
    assert.ok(fs.existsSync(path.join(cwd, "export-keras", "model.keras")), tuned);
    assert.deepEqual(JSON.parse(runs), ["run-1"], "npm run tensorboard -- logs, run where the command ran, shows its run");

    const [python] = bashBlocks("Continue in Python");
    const [, fitted, signature] = await runBlock(python, cwd, env);
    const split = fs.readFileSync(path.join(cwd, "split.csv"), "utf8").trim().split("\n").slice(1);
    assert.equal(split.filter((row) => row.endsWith(",train")).length, photos.files("train").length);
    assert.match(fitted, /val_accuracy/, "Keras measured the validation split");
    assert.ok(fs.existsSync(path.join(cwd, "trained-in-python.keras")));
    assert.match(signature, /inputs\['images'\][\s\S]*outputs\['probabilities'\]/);
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});
