"""Test configuration shared by the unit tests and the notebooks that nbval runs.

Tests always run in the smoke profile (seconds per notebook, no network): nobody has to
remember to set LRLAB_PROFILE. Where the course's offline data folder ``../shared/data`` exists
beside the checkout (the development machines and CI), ``LRLAB_DATA`` points there unless it is set,
so the smoke runs train on real Fashion-MNIST; on a fresh clone elsewhere they use the synthetic
stand-in. The notebook kernels that nbval starts inherit this environment.

Notebooks are committed with outputs cleared, so nbval would have nothing to compare. Cells tagged
``nbval-check-output`` keep their expected stdout in ``metadata["lrlab"]["expected_output"]``, or all
their outputs (a table's text and HTML) in ``["expected_outputs"]`` (written by
``tests/record_expected.py``); here they become the reference outputs nbval compares with.
"""

import os
from pathlib import Path

import nbformat
import pytest

os.environ["LRLAB_PROFILE"] = "smoke"
os.environ.setdefault("MPLBACKEND", "Agg")
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
if SHARED_DATA.is_dir() and not os.environ.get("LRLAB_DATA"):
    os.environ["LRLAB_DATA"] = str(SHARED_DATA)

CHECK_TAG = "nbval-check-output"


def pytest_collection_modifyitems(items):
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None or not hasattr(item, "options"):
            continue  # not an nbval cell
        recorded = cell.metadata.get("lrlab", {})
        expected = recorded.get("expected_output")
        if recorded.get("expected_outputs") is not None:
            outputs = [nbformat.from_dict({**o, "metadata": {}} if o["output_type"] == "display_data" else o)
                       for o in recorded["expected_outputs"]]
            cell.outputs = outputs
            cell.execution_count = 1
            item.options["check"] = True
            continue
        if expected is None:
            if CHECK_TAG in cell.metadata.get("tags", []):
                raise pytest.UsageError(
                    f"{item.nodeid} is tagged {CHECK_TAG} but has no recorded output; "
                    f"run: .venv/bin/python tests/record_expected.py {item.path}"
                )
            continue
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected)]
        cell.execution_count = 1  # nbval only compares cells that have been run
        item.options["check"] = True
