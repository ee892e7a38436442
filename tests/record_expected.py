"""Record the expected output of a notebook's deterministic cells, for nbval to compare.

Notebooks are committed with their outputs cleared (the book build makes them). Cells whose
printed output is deterministic (schedule tables, lr traces) carry the tag ``nbval-check-output``;
this script runs the notebook in the smoke profile and stores each such cell's stdout in
``cell.metadata["lrlab"]["expected_output"]``. The root ``conftest.py`` hands that text to nbval,
which then fails the test if the cell prints anything else.

    .venv/bin/python tests/record_expected.py book/04_piecewise_constant.ipynb [more.ipynb ...]
"""

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TAG = "nbval-check-output"


def record(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    run = nbformat.from_dict(nb)  # a copy to execute; `nb` keeps its cleared outputs
    os.environ["LRLAB_PROFILE"] = "smoke"
    NotebookClient(run, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    count = 0
    for cell, ran in zip(nb.cells, run.cells):
        if cell.cell_type != "code" or TAG not in cell.metadata.get("tags", []):
            continue
        streams = [o for o in ran.outputs if o.output_type == "stream" and o.name == "stdout"]
        others = [o.output_type for o in ran.outputs if o not in streams]
        if others or not streams:
            raise SystemExit(f"{path}: a cell tagged {TAG} must print to stdout only; it gave {others or 'nothing'}:\n{cell.source}")
        cell.metadata.setdefault("lrlab", {})["expected_output"] = "".join(o.text for o in streams)
        count += 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # write next to the notebook, then replace it: never a half-written notebook
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".ipynb", delete=False) as tmp:
        nbformat.write(nb, tmp)
    os.replace(tmp.name, path)
    return count


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        print(f"{arg}: recorded {record(Path(arg))} cells")
