// The project's Python, the one place it is named: INCEPTION_LAB_PYTHON, or the venv setup made (with
// TensorFlow, Keras and JupyterLab in it). The Keras bridge (exports, Keras files, TensorFlow Lite), the
// TensorFlow Lite interpreter and the environment table all run it; how a script of the library's that
// failed says why is here too, one rule for all of them.
import { type ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";

export const SETUP_HINT = "set INCEPTION_LAB_PYTHON to a Python with tensorflow, or run `npm run setup` (it makes the project's venv)";

/** The Python to run: INCEPTION_LAB_PYTHON, or the project's venv; not checked. */
export function projectPython(): string {
  return process.env.INCEPTION_LAB_PYTHON ?? path.resolve(__dirname, "..", "..", ".venv", "bin", "python");
}

/** The project's Python, checked to be there and runnable; `what` says what needs it. */
export function pythonWithTensorFlow(what = "Keras and SavedModel files are written by Python TensorFlow"): string {
  const python = projectPython();
  if (!fs.existsSync(python)) throw new Error(`${what}, and ${python} is not there: ${SETUP_HINT}.`);
  try {
    fs.accessSync(python, fs.constants.X_OK);
  } catch {
    throw new Error(`The Python ${python} cannot be run (it is not executable): ${SETUP_HINT}.`);
  }
  return python;
}

/** The library's Python scripts running now, killed when Node exits (each also ends by itself when its stdin closes). */
const running = new Set<ChildProcess>();
let killOnExit = false;

export interface PythonScript {
  child: ChildProcess;
  python: string;
  /** The last 64 KiB it wrote to stderr: its own last line says why it failed (pythonFailure). */
  lastWords(): string;
  /** It ended or was stopped: Node's exit no longer needs to kill it. */
  release(): void;
}

/**
 * Starts one of the library's Python scripts (in the folder of `script`) with the project's Python, TensorFlow's
 * log quiet: the Keras bridge, one call at a time, and the TensorFlow Lite interpreter, a session of many. It is
 * killed if this process exits first. `what` says what needs Python, for the error when it is missing.
 */
export function startPythonScript(script: string, args: string[], options: { what?: string; stdout: "pipe" | "ignore"; env?: Record<string, string> }): PythonScript {
  const python = pythonWithTensorFlow(options.what);
  const child = spawn(python, [script, ...args], { stdio: ["pipe", options.stdout, "pipe"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", ...options.env } });
  running.add(child);
  if (!killOnExit) {
    killOnExit = true;
    process.on("exit", () => running.forEach((script) => script.kill("SIGKILL")));
  }
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr = (stderr + chunk).slice(-65536)));
  child.stdin!.on("error", () => undefined); // it may end before a request is written: its close says why
  child.on("close", () => running.delete(child));
  return { child, python, lastWords: () => stderr, release: () => running.delete(child) };
}

/** A Python that could not be started at all (spawn's error event). */
export function pythonNotRunnable(python: string, error: NodeJS.ErrnoException): Error {
  return new Error(`cannot run the Python ${python} (${error.code ?? error.message}): ${SETUP_HINT}.`);
}

/**
 * Why one of the library's Python scripts ended without finishing: its own last `NAME: what` line (NAME the
 * script's name, as keras-bridge.py and tflite-interpreter.py say it), else how it ended; with
 * INCEPTION_LAB_DEBUG=1, everything it wrote to stderr after it.
 */
export function pythonFailure(script: string, python: string, stderr: string, code: number | null, signal: NodeJS.Signals | null): Error {
  const prefix = `${path.basename(script, ".py")}: `;
  const said = stderr.split("\n").filter((line) => line.startsWith(prefix)).pop()?.slice(prefix.length);
  const how = signal ? `was stopped by ${signal}` : `exited with code ${code}`;
  const message = said ?? `${path.basename(script)} (run by ${python}) ${how} without saying why; set INCEPTION_LAB_DEBUG=1 to see its output.`;
  return new Error(process.env.INCEPTION_LAB_DEBUG === "1" && stderr.trim() ? `${message}\n${stderr.trim()}` : message);
}
