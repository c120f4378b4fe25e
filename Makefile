# kiosk — the two commands of the Quick start are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: deps demo demo-home demo-headless demo-hashsets test lint types unit images sign-demo-packs \
	lock clean

# The system packages the demo and the tests need (Debian names), the one list: `make deps` installs
# them and .ci/run calls it. libmagic for the scan; the Sleuth Kit CLI (fls, icat) is the tests'
# independent oracle; the rest build test images (the sample-image builder is tested too);
# qemu-utils (qemu-img, qemu-io) makes the VMDK/VHD/VHDX/QCOW test variants and their raw oracle;
# libarchive13 reads archives found inside the evidence (libarchive-c is its Python binding).
APT_PACKAGES := sleuthkit ewf-tools libmagic1 dosfstools mtools ntfs-3g fdisk parted e2fsprogs \
	exfatprogs genisoimage qemu-utils libarchive13 cryptsetup-bin lvm2 zip p7zip-full gnupg \
	openssl age qpdf

# Idempotent and cheap when nothing is missing (one dpkg-query, no apt-get update), so `make demo`
# and `make test` run it every time. As root it installs what is missing; otherwise it prints the
# one command to run and stops. Without dpkg (not Debian) it names the packages and goes on.
deps:
	@command -v dpkg-query >/dev/null || { \
		echo "make deps: no dpkg-query (not Debian?): make sure these or their equivalents are" \
			"installed: $(APT_PACKAGES)" >&2; exit 0; }; \
	installed=" $$(dpkg-query -W -f='$${db:Status-Status}:$${Package} ' $(APT_PACKAGES) \
		2>/dev/null) "; \
	missing=""; for p in $(APT_PACKAGES); do \
		case "$$installed" in *" installed:$$p "*) ;; *) missing="$$missing $$p";; esac; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "make deps: missing system packages:$$missing. Install them with:" >&2; \
		echo "  sudo apt-get install$$missing" >&2; exit 1; fi; \
	echo "make deps: installing:$$missing" >&2; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq $$missing >/dev/null

# Every package comes from requirements.lock, checked by hash: the runtime and dev dependencies,
# and pip, setuptools and wheel themselves (a new venv carries setuptools 65.5, which has known
# advisories). kiosk is then installed from this folder with what is already there: no download,
# no unhashed build requirements (--no-build-isolation). Its bytecode is compiled once, as a wheel
# install would: an editable install under PYTHONDONTWRITEBYTECODE otherwise compiles every module
# in every process of every scan (~0.25 s of CPU each, bench/README.md).
LOCK := requirements.lock
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m compileall -q kiosk >/dev/null
	touch $(STAMP)

# Refresh requirements.lock after changing a pin in pyproject.toml (needs PyPI): pip-compile (pip-
# tools, in a throwaway venv) pins pyproject's runtime and dev dependencies, what builds kiosk
# and pip, each with the hashes of all its files. tests/test_lock.py checks the two agree.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip-tools==7.6.2
	printf 'pip\nsetuptools>=77\nwheel\n' | $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes \
		--allow-unsafe --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml -
	rm -rf $(LOCK_VENV)

# The demo keeps its key, trust store and audit log in .kiosk-demo/ (git-ignored), made on first use.
# The bundled rule packs and hash sets are signed by the committed, worthless demo publisher key
# (demo/README.md); only this demo kiosk (and the test suite's) trusts it, and for publishing only:
# its private key is public, so a report or review it signs must never verify.
DEMO_HOME := $(CURDIR)/.kiosk-demo
DEMO_PUBLISHER := kiosk project demo publisher (public test key: never trust outside the demo)

# Trust the demo publisher once per demo home (a second 'keys trust' of the same key is refused).
$(DEMO_HOME)/.demo-publisher-trusted: | $(STAMP)
	test -f $(DEMO_HOME)/keys/kiosk.key || KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk keys init
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk keys trust demo/publisher.pub --label "$(DEMO_PUBLISHER)" \
		--purpose publish
	touch $@

# The demo kiosk's one supervisor: their own key (passphrase-encrypted; the passphrase is a
# public demo secret, like the publisher key), trusted here for reviews under their name.
DEMO_SUPERVISOR := DS-5678 (demo supervisor)
$(DEMO_HOME)/.demo-supervisor-trusted: $(DEMO_HOME)/.demo-publisher-trusted
	mkdir -p -m 700 $(DEMO_HOME)/people
	test -f $(DEMO_HOME)/people/ds-5678.key || echo "demo supervisor passphrase" | \
		KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk keys new $(DEMO_HOME)/people/ds-5678.key
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk keys trust $(DEMO_HOME)/people/ds-5678.key.pub \
		--label "$(DEMO_SUPERVISOR)" --purpose review
	touch $@

# Everything the demo kiosk needs, without opening the app: what ./kiosk-demo makes sure of.
demo-home: deps $(STAMP) $(DEMO_HOME)/.demo-publisher-trusted $(DEMO_HOME)/.demo-supervisor-trusted

# The terminal app on the bundled sample images and demo packs: for a person at a terminal.
demo: demo-home
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk tui --evidence sample_images --reports reports \
		--rules rules --hashsets hashsets

demo-headless: demo-home
	KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk scan sample_images/mbr-fat16-ext4.dd \
		--case DEMO-0001 --exhibit EX-1 --officer PC-1234 --authorised-by DS-5678 \
		--legal-basis consent --legal-ref "demo: bundled sample image" \
		--rules rules --hashsets hashsets --out reports

lint: $(STAMP)
	$(BIN)/ruff check kiosk tests sample_images demo $(wildcard bench)
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy kiosk

unit: deps $(STAMP)
	$(BIN)/pytest

test: lint types unit

images:
	$(PY) sample_images/build.py

# Rebuild and re-sign the bundled demo hash sets (fixed clock: same bytes every time).
demo-hashsets: $(STAMP)
	chmod 600 demo/publisher.key
	$(BIN)/python demo/build_hashsets.py

# Re-sign the bundled packs after editing them (each is checked and tested first). Git does not keep
# the key's 0600 mode, which the kiosk insists on, hence the chmod.
DEMO_PACKS := demo kiosk-core
sign-demo-packs: $(STAMP)
	chmod 600 demo/publisher.key
	for p in $(DEMO_PACKS); do \
		KIOSK_HOME=$(DEMO_HOME) $(BIN)/kiosk rules sign $$p --key demo/publisher.key --valid-days 3650 \
		|| exit 1; done

clean:
	rm -rf $(VENV) $(LOCK_VENV) build *.egg-info
