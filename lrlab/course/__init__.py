"""The lrlab course: the harness its chapters run on, built on the :mod:`lrlab` library.

* :mod:`~lrlab.course.profiles` (the ``full``/``laptop``/``smoke`` budgets), :mod:`~lrlab.course.models`
  (LeNet, the tutorials' nets), :mod:`~lrlab.course.datasets` (the data a book build needs);
* :mod:`~lrlab.course.studies` (what every reference run is, as data), :mod:`~lrlab.course.runner`
  (``make results``: train them, resumably), :mod:`~lrlab.course.ddp` (the data-parallel command),
  :mod:`~lrlab.course.results` (their tables and provenance), :mod:`~lrlab.course.verdicts` (every
  comparison the book states, as data), :mod:`~lrlab.course.facts` (what each chapter's prose quotes);
* :mod:`~lrlab.course.figures` and :mod:`~lrlab.course.book` (the book's plumbing: glue, the set-up cell,
  the student edition).

The chapters import it as ``from lrlab import course``; the names below are the ones they use most.
"""

from .book import glue, show_table
from .figures import plot_runs
from .models import ImprovedCNN, LeNet, SimpleModel
from .profiles import Experiment, experiment, get_profile
from .results import read_table
from . import results  # noqa: F401 (course.results.compare_table in the chapters)

__all__ = ["experiment", "get_profile", "Experiment", "LeNet", "SimpleModel", "ImprovedCNN", "read_table",
           "plot_runs", "glue", "show_table", "results"]
