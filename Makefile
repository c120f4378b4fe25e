# kiosk — the two commands of the Quick start are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-headless demo-hashsets test lint types unit images clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo keeps its key, trust store and audit log in .kiosk-demo/ (git-ignored), made on first use.
DEMO_HOME := $(CURDIR)/.kiosk-demo

# The bundled hash sets are signed by the worthless demo key in demo/: only the demo home trusts it.
# Done once per demo home (a second 'keys trust' of the same key is refused by design).
$(DEMO_HOME)/.trusts-demo-hashset-key: | $(STAMP)
	test -f $(DEMO_HOME)/keys/kiosk.key || KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk keys init
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk keys trust demo/hashset-signing.pub \
		--label "kiosk project demo key (public, worthless: demo only)"
	touch $@

# The terminal app on the bundled sample images and demo packs: for a person at a terminal.
demo: $(STAMP) $(DEMO_HOME)/.trusts-demo-hashset-key
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk tui --evidence sample_images --reports reports \
		--rules rules --hashsets hashsets

demo-headless: $(STAMP) $(DEMO_HOME)/.trusts-demo-hashset-key
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk scan sample_images/mbr-fat16-ext4.dd \
		--case DEMO-0001 --exhibit EX-1 --officer PC-1234 --authorised-by DS-5678 \
		--legal-basis consent --legal-ref "demo: bundled sample image" \
		--rules rules --hashsets hashsets --out reports

lint: $(STAMP)
	$(BIN)/ruff check kiosk tests sample_images demo $(wildcard bench)
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy kiosk

unit: $(STAMP)
	$(BIN)/pytest

test: lint types unit

images:
	$(PY) sample_images/build.py

demo-hashsets: $(STAMP)
	$(BIN)/python demo/build_hashsets.py

clean:
	rm -rf $(VENV) build *.egg-info
