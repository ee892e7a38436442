# The README's two commands: `make book` (builds the HTML book) and `make test` (runs every test).
# Each creates the virtual environment .venv and installs everything on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lrlab-installed

.PHONY: book book-zh test install benchmark results verdicts sync student student-zh site pdf clean distclean

# jupyter-book caches executed notebooks by their code, not by LRLAB_PROFILE: a cache made in
# another profile is dropped with the pages built from it (Sphinx would otherwise keep the old pages
# of unchanged notebooks), so a smoke build never passes for a full one.
PROFILE := $(or $(LRLAB_PROFILE),full)
# What the cache was made with: the profile, and inline figures (caches made before the build
# cleared MPLBACKEND may hold notebooks executed without their figures).
CACHE_KEY = $(1) inline-figures
# Drop what the English build cached in another profile (and the builds named in $(1) that use that cache),
# then record the profile the cache is now made in.
FRESH_CACHE = @if [ "$$(cat _build/.lrlab-profile 2>/dev/null)" != "$(call CACHE_KEY,$(PROFILE))" ]; then \
	rm -rf _build/.jupyter_cache _build/.doctrees _build/html _build/jupyter_execute $(1); fi; \
	echo "$(call CACHE_KEY,$(PROFILE))" > _build/.lrlab-profile

book: $(STAMP)
	@mkdir -p _build
	$(call FRESH_CACHE,)
	@# the datasets first: a missing one stops here with lrlab's message, before any notebook runs
	LRLAB_PROFILE=$(PROFILE) $(BIN)/python -m lrlab.course data
	@# figures need matplotlib's inline backend: an MPLBACKEND from the caller (the tests set Agg) would drop them
	env -u MPLBACKEND $(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is in _build/html/index.html"

# The Chinese edition (中文版): the English notebooks' code with book/zh/'s translations, assembled into
# _build/zh/src and built into _build/zh/html. It shares the English build's executed-notebook cache
# (the code cells are the same), so after `make book` it only runs Sphinx.
book-zh: $(STAMP)
	@mkdir -p _build
	$(call FRESH_CACHE,_build/zh)
	LRLAB_PROFILE=$(PROFILE) $(BIN)/python -m lrlab.course data
	$(BIN)/python -m lrlab.course zh build _build/zh/src --cache $(CURDIR)/_build/.jupyter_cache
	env -u MPLBACKEND $(BIN)/jupyter-book build _build/zh/src --warningiserror --nitpick --keep-going
	@ln -sfn src/_build/html _build/zh/html
	@echo "The Chinese edition is in _build/zh/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_speed.py

# The reference runs the chapters read (book/results/*.csv): resumable, so stop and rerun at will.
# STUDIES= and SEEDS= narrow it (e.g. make results STUDIES=mnist_cnn). Passive OpenMP waiting keeps
# other work on a small machine from slowing the busy-waiting threads tenfold.
results: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m lrlab.course.runner --profile full $(STUDIES) $(if $(SEEDS),--seeds $(SEEDS))
	$(BIN)/python -m lrlab.course verdicts

# Every comparison the book states, from the result tables: book/results/verdicts.csv.
verdicts: $(STAMP)
	$(BIN)/python -m lrlab.course verdicts

# The student edition for course labs: every chapter without its solutions (notebooks in
# _build/student/book) and their HTML (_build/student/_build/html), executed in the smoke profile
# unless LRLAB_PROFILE is set (students run the notebooks themselves).
STUDENT_PROFILE := $(or $(LRLAB_PROFILE),smoke)

student: $(STAMP)
	$(BIN)/python -m lrlab.course student _build/student
	@if [ "$$(cat _build/student/.lrlab-profile 2>/dev/null)" != "$(call CACHE_KEY,$(STUDENT_PROFILE))" ]; then rm -rf _build/student/_build/.jupyter_cache _build/student/_build/.doctrees _build/student/_build/html _build/student/_build/jupyter_execute; fi
	@echo "$(call CACHE_KEY,$(STUDENT_PROFILE))" > _build/student/.lrlab-profile
	LRLAB_PROFILE=$(STUDENT_PROFILE) $(BIN)/python -m lrlab.course data
	env -u MPLBACKEND LRLAB_PROFILE=$(STUDENT_PROFILE) $(BIN)/jupyter-book build _build/student --warningiserror --nitpick --keep-going
	@echo "The student edition is in _build/student: notebooks in book/, HTML in _build/html/index.html"

# The Chinese student edition: _build/zh-student (notebooks in book/, HTML in html/), like `make student`.
student-zh: $(STAMP)
	$(BIN)/python -m lrlab.course zh build _build/zh-student/src --student
	@if [ "$$(cat _build/zh-student/.lrlab-profile 2>/dev/null)" != "$(call CACHE_KEY,$(STUDENT_PROFILE))" ]; then rm -rf _build/zh-student/src/_build; fi
	@echo "$(call CACHE_KEY,$(STUDENT_PROFILE))" > _build/zh-student/.lrlab-profile
	LRLAB_PROFILE=$(STUDENT_PROFILE) $(BIN)/python -m lrlab.course data
	env -u MPLBACKEND LRLAB_PROFILE=$(STUDENT_PROFILE) $(BIN)/jupyter-book build _build/zh-student/src --warningiserror --nitpick --keep-going
	@ln -sfn src/_build/html _build/zh-student/html
	@echo "The Chinese student edition is in _build/zh-student: notebooks in src/book/, HTML in html/index.html"

# The site as it is published: the built editions under one root (_build/site), as the workflow deploys it.
site:
	$(BIN)/python -m lrlab.course site _build/site

# A PDF of the book through jupyter-book's LaTeX builder (XeLaTeX, TeX from Debian's packages:
# texlive-xetex texlive-latex-extra texlive-fonts-recommended latexmk fonts-freefont-otf), into
# _build/latex/lrlab.pdf. The notebooks come from the same cache as `make book`.
# Also texlive-lang-chinese and fonts-noto-cjk: the sources' Chinese quotes, in xeCJK (see _config.yml).
pdf: $(STAMP)
	@mkdir -p _build
	$(call FRESH_CACHE,_build/latex)
	LRLAB_PROFILE=$(PROFILE) $(BIN)/python -m lrlab.course data
	@rm -rf _build/latex   # latexmk builds every .tex it finds there: no stale document from an older run
	env -u MPLBACKEND $(BIN)/jupyter-book build . --builder pdflatex --keep-going
	@echo "The PDF is _build/latex/lrlab.pdf"

# Copy the repository URL of pyproject.toml into _config.yml, the README and every chapter's set-up cell.
sync: $(STAMP)
	$(BIN)/python -m lrlab.course sync

install: $(STAMP)

# d2l is installed on its own with --no-deps: its exact pins (numpy==1.23.5, matplotlib==3.7.2, ...)
# must not decide the course's environment. requirements.txt lists what d2l.torch imports.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	grep -v '^d2l' requirements.txt > $(VENV)/requirements-without-d2l.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements-without-d2l.txt
	$(BIN)/python -m pip install --quiet --no-deps $$(grep '^d2l' requirements.txt)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -c "import torch, torchvision, lrlab, lrlab.course, d2l.torch; print('torch', torch.__version__, '| torchvision', torchvision.__version__)"
	touch $@

clean:        # the built book and its notebook cache
	rm -rf _build

distclean: clean   # also the virtual environment
	rm -rf $(VENV)
