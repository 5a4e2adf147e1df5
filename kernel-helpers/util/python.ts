// The project's Python, the one place it is named: INCEPTION_LAB_PYTHON, or the venv setup made (with
// TensorFlow, Keras and JupyterLab in it). The Keras bridge (exports, Keras files, TensorFlow Lite) and the
// environment table both run it.
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
