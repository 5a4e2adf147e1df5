// The project's Python, the one place it is named: INCEPTION_LAB_PYTHON, or the venv setup made (with
// TensorFlow, Keras and JupyterLab in it). The Keras bridge (exports, Keras files, TensorFlow Lite), the
// TensorFlow Lite interpreter and the environment table all run it; how a script of the library's that
// failed says why is here too, one rule for all of them.
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
