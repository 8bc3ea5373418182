# virtplane — the two commands: `make lab` (the main job on the embedded lab) and `make test`.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml lab/pyproject.toml | sha1sum | cut -c1-12)
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GOVMOMI := /usr/share/gocode/src/github.com/vmware/govmomi

.PHONY: lab lab-down test lint bench plugin deps-python deps-debian

lab: deps-python deps-debian
	$(BIN)/virtplane lab up
	eval "$$($(BIN)/virtplane lab env)" && $(BIN)/virtplane apply stacks/lab --yes
	eval "$$($(BIN)/virtplane lab env)" && $(BIN)/virtplane drift stacks/lab
	@echo "The lab is still running. Stop it with: $(BIN)/virtplane lab down"

lab-down: deps-python
	$(BIN)/virtplane lab down

test: deps-python deps-debian
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=20

lint: deps-python
	$(BIN)/ruff check .

# The plugin for use outside this repository: a wheel and plugin tarballs in dist/ (docs/pulumi.md). PLUGIN_SERVER=URL
# names where the tarballs are published (the wheel's pulumi-plugin.json then makes pulumi up download them).
plugin: deps-python
	$(BIN)/python -m virtplane.plugin.package --out dist $(if $(PLUGIN_SERVER),--server $(PLUGIN_SERVER))

bench: deps-python deps-debian
	$(BIN)/python bench/drift_vsphere.py
	$(BIN)/python bench/drift_proxmox.py
	$(BIN)/python bench/drift_libvirt.py
	$(BIN)/python bench/drift_xenserver.py

deps-python: $(STAMP)

# libvirt-python builds against Debian's libvirt-dev: the Debian packages come first.
$(STAMP): pyproject.toml lab/pyproject.toml | deps-debian
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,policy,libvirt]' -e ./lab
	rm -f $(VENV)/.installed-* && touch $@

deps-debian:
	@if ! command -v go >/dev/null || [ ! -d $(GOVMOMI) ]; then \
	  echo "Installing golang-go and golang-github-vmware-govmomi-dev (Debian) for the vSphere simulator"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-vmware-govmomi-dev; \
	fi
	@if ! command -v libvirtd >/dev/null || ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null \
	    || [ ! -d /usr/share/OVMF ] || ! pkg-config --exists libvirt 2>/dev/null; then \
	  echo "Installing libvirt, QEMU and OVMF (Debian) for the libvirt provider and its lab daemon"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    libvirt-daemon-system qemu-system-x86 qemu-utils ovmf libvirt-dev pkg-config gcc python3-dev; \
	fi
