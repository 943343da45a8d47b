# mmrepro: `make reproduce-<paper> [DATA=dir]` and `make test`; both install what they need.
PAPERS   := mvgcn ld4mrec befa galip denet storyimager dualvgr
PROJECTS := common $(PAPERS)
PYTHON   ?= $(shell command -v python3.11 || command -v python3)
TOOLS    := .venv-tools
TOOL_PINS := tox==4.67.15 tox-uv==1.37.1 uv==0.13.9
# tox-uv builds every environment from uv's one shared cache (hard links): see tox.ini and toxfile.py.
TOX      := $(TOOLS)/bin/tox
TOOLS_OK := $(TOOLS)/.installed-$(subst ==,-,$(subst $() ,_,$(TOOL_PINS)))

# Every tox environment, TEST_JOBS at a time, the longest first; each job's torch gets an equal share of the
# cores (OMP_NUM_THREADS), so two jobs on 2 cores do not oversubscribe them. Each environment's output is
# printed whole when it ends, closing with its line setup[install s] + cmd[tests s]. TEST_JOBS=1: one at a time.
TEST_JOBS ?= 2
TEST_ENVS := denet galip storyimager repo dualvgr mvgcn befa common ld4mrec lint
CORES    := $(shell nproc 2>/dev/null || echo 1)
TEST_THREADS := $(shell echo $$(( $(CORES) / $(TEST_JOBS) > 0 ? $(CORES) / $(TEST_JOBS) : 1 )))

.PHONY: help test lint clean $(addprefix test-,$(TEST_ENVS)) $(addprefix standalone-,$(PAPERS))

help:
	@echo "make reproduce-<paper> [DATA=dir]  reproduce one paper (no DATA: its embedded synthetic default)"
	@echo "make test                         every tox environment (lint + all projects)"
	@echo "make test-<env>                   one of: $(TEST_ENVS)"
	@echo "make standalone-<paper>           the paper + common/ copied out, installed from its requirements.txt, tested"
	@echo "papers: $(PAPERS)"

$(TOOLS_OK):
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet $(TOOL_PINS)
	touch $@

test: $(TOOLS_OK)
	@OMP_NUM_THREADS=$(TEST_THREADS) $(MAKE) --no-print-directory -j$(TEST_JOBS) -k --output-sync=target \
		$(addprefix test-,$(TEST_ENVS))

lint: $(TOOLS_OK)
	$(TOX) run -e lint

$(addprefix test-,$(TEST_ENVS)): test-%: $(TOOLS_OK)
	@$(TOX) run -e $*

# The paper lifted out: its folder and common/ (befa: and mvgcn/) copied to a scratch folder, a new
# virtualenv from its requirements.txt, its whole test suite (CI runs the quick form for every paper).
$(addprefix standalone-,$(PAPERS)): standalone-%: $(TOOLS_OK)
	$(TOOLS)/bin/python tests/standalone_check.py $*

# A paper is built once its package has a `reproduce` module; until then this fails with one line.
reproduce-%:
	$(if $(filter $*,$(PAPERS)),,$(error reproduce-$*: unknown paper '$*'; the papers are: $(PAPERS)))
	$(if $(wildcard $*/src/$*/reproduce.py),,$(error reproduce-$*: $* is not implemented yet \
		(see $*/README.md); nothing was run))
	@start=$$(date +%s); $(MAKE) --no-print-directory $(TOOLS_OK) && $(TOX) run -e $* --notest && \
		echo "reproduce-$*: environment .tox/$* set up in $$(( $$(date +%s) - start )) s"
	.tox/$*/bin/python -m $*.cli reproduce $(if $(DATA),--data $(DATA))

clean:
	rm -rf .tox $(TOOLS) .cache
