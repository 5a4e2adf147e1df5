"""Executes a notebook headless through the tslab kernel (nbclient) and writes the result.

usage: run_notebook.py NOTEBOOK [OUTPUT]    (OUTPUT defaults to NOTEBOOK: executes in place; it must lie
                                             inside the project, where the kernel works)

The output notebook is written even when a cell fails, so the partial outputs can be read.
Exit status 1 when a cell fails, with the failing cell's source and error on stderr.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    source = os.path.abspath(sys.argv[1])
    target = os.path.abspath(sys.argv[2] if len(sys.argv) == 3 else sys.argv[1])
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.commonpath([project, target]) != project:
        # The kernel resolves "inception-lab" from its working folder up, and it works where the output goes.
        print(f"run_notebook.py: write the output inside the project ({project}), not {target}", file=sys.stderr)
        return 2
    notebook = nbformat.read(source, as_version=4)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    client = NotebookClient(
        notebook,
        kernel_name="tslab",
        timeout=int(os.environ.get("NOTEBOOK_CELL_TIMEOUT", "3600")),
        startup_timeout=120,
        # The kernel works where the output goes: files a notebook writes by relative path (models/) land beside
        # the notebook that made them, so a test run into test-output/ never touches notebooks/.
        resources={"metadata": {"path": os.path.dirname(target)}},
    )
    started = time.monotonic()
    status = 0
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        status = 1
        print(f"{os.path.basename(source)}: a cell failed", file=sys.stderr)
        failed = next((c for c in notebook.cells if c.get("outputs") and any(
            o.get("name") == "stderr" or o.get("output_type") == "error" for o in c["outputs"])), None)
        if failed is not None:
            print("--- cell ---\n" + failed.source, file=sys.stderr)
            for output in failed.outputs:
                if output.get("name") == "stderr":
                    print("--- stderr ---\n" + output.get("text", ""), file=sys.stderr)
        print(str(error)[-3000:], file=sys.stderr)
    finally:
        temporary = target + ".tmp"
        nbformat.write(notebook, temporary)
        os.replace(temporary, target)  # atomic: a killed run never leaves half a notebook
    print(f"{os.path.basename(source)}: {'failed' if status else 'ok'} in {time.monotonic() - started:.1f} s -> {target}")
    return status


if __name__ == "__main__":
    sys.exit(main())
