"""Record the expected output of a notebook's deterministic cells, for nbval to compare.

Notebooks are committed with their outputs cleared (the book build makes them). Cells whose
printed output is deterministic (schedule tables, lr traces) carry the tag ``nbval-check-output``;
this script runs the notebook in the smoke profile and stores each such cell's stdout in
``cell.metadata["lrlab"]["expected_output"]``, or, for a cell that shows a table
(:func:`lrlab.course.show_table`), all its outputs (text and HTML) in ``["expected_outputs"]``. The root ``conftest.py`` hands that text to nbval,
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
#: What a checked cell may show besides its printed text: a table's text and HTML (lrlab.course.show_table).
TEXT_TYPES = {"text/plain", "text/html"}


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
        shown = [o for o in ran.outputs if o.output_type in ("display_data", "execute_result")
                 and set(o.data) <= TEXT_TYPES]
        others = [o.output_type for o in ran.outputs if o not in streams and o not in shown]
        if others or not (streams or shown):
            raise SystemExit(f"{path}: a cell tagged {TAG} must print to stdout or show text or HTML (a table) only; "
                             f"it gave {others or 'nothing'}:\n{cell.source}")
        mine = cell.metadata.setdefault("lrlab", {})
        mine.pop("expected_output", None)
        mine.pop("expected_outputs", None)
        if shown:  # every output, in order: text and HTML data compared as they are
            mine["expected_outputs"] = [{"output_type": "stream", "name": "stdout", "text": o.text}
                                        if o.output_type == "stream" else
                                        {"output_type": "display_data", "data": dict(o.data)}
                                        for o in ran.outputs]
        else:
            mine["expected_output"] = "".join(o.text for o in streams)
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
