# mmrepro: `make reproduce-<paper> [DATA=dir]` and `make test`; both install what they need.
PAPERS   := mvgcn ld4mrec befa galip denet storyimager dualvgr
PROJECTS := common $(PAPERS)
PYTHON   ?= $(shell command -v python3.11 || command -v python3)
TOOLS    := .venv-tools
TOX      := $(TOOLS)/bin/tox
# KEEP_ENVS=0 deletes each tox environment once its tests have run (about 6 GB each with the CUDA build of
# torch), so the disk holds one at a time; CI runs `make test KEEP_ENVS=0`.
KEEP_ENVS ?= 1

.PHONY: help test lint clean $(addprefix test-,$(PROJECTS))

help:
	@echo "make reproduce-<paper> [DATA=dir]  reproduce one paper (no DATA: its embedded synthetic default)"
	@echo "make test                         every tox environment (lint + all projects)"
	@echo "make test-<project>               one of: $(PROJECTS)"
	@echo "papers: $(PAPERS)"

$(TOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet tox==4.67.15

test: $(TOX)
ifeq ($(KEEP_ENVS),0)
	@failed=""; for env in lint $(PROJECTS); do \
		$(TOX) run -e $$env || failed="$$failed $$env"; rm -rf .tox/$$env; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; echo "make test: all passed"
else
	$(TOX) run
endif

lint: $(TOX)
	$(TOX) run -e lint

$(addprefix test-,$(PROJECTS)): test-%: $(TOX)
	$(TOX) run -e $*

# A paper is built once its package has a `reproduce` module; until then this fails with one line.
reproduce-%:
	$(if $(filter $*,$(PAPERS)),,$(error reproduce-$*: unknown paper '$*'; the papers are: $(PAPERS)))
	$(if $(wildcard $*/src/$*/reproduce.py),,$(error reproduce-$*: $* is not implemented yet \
		(see $*/README.md); nothing was run))
	@$(MAKE) --no-print-directory $(TOX)
	$(TOX) run -e $* --notest
	.tox/$*/bin/python -m $*.reproduce $(if $(DATA),--data $(DATA))

clean:
	rm -rf .tox $(TOOLS) .cache
