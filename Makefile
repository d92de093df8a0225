# Two commands set everything up: `make demo` and `make test`.
# On a machine without an NVIDIA GPU, torch is pinned to the CPU build so no multi-GB CUDA wheel is pulled.
VENV := .venv
PY := $(VENV)/bin/python
TORCH_CPU := torch==2.13.0
CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: demo test venv opus clean

# libopus 1.5 with Deep PLC for the Opus peers (src/speechinpaint/peers/opus.py): Debian trixie's libopus0,
# fetched with a private APT configuration (its own sources list, state and cache under build/libopus/apt;
# nothing in /etc/apt changes) and unpacked with dpkg -x. The system's own libopus, if any, is not used.
OPUS_DIR := build/libopus
OPUS_LIB := $(OPUS_DIR)/libopus.so.0
OPUS_APT := $(CURDIR)/$(OPUS_DIR)/apt
DEBIAN_MIRROR ?= http://deb.debian.org/debian
APT_PRIVATE = -o Dir::Etc::SourceList=$(OPUS_APT)/sources.list -o Dir::Etc::SourceParts=/dev/null \
	-o Dir::State=$(OPUS_APT)/state -o Dir::State::status=/dev/null -o Dir::Cache=$(OPUS_APT)/cache \
	-o Debug::NoLocking=1 -o APT::Sandbox::User=$$(id -un)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install -q torch; \
	else \
		$(PY) -m pip install -q $(TORCH_CPU) || $(PY) -m pip install -q --index-url $(CPU_INDEX) torch; \
	fi
	$(PY) -m pip install -q -e '.[test,cluster]'
	touch $@

venv: $(VENV)/.installed

opus: $(OPUS_LIB)

$(OPUS_LIB):
	rm -rf $(OPUS_APT) $(OPUS_DIR)/root && mkdir -p $(OPUS_APT)/state/lists/partial $(OPUS_APT)/cache/archives/partial
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(DEBIAN_MIRROR) trixie main" \
		> $(OPUS_APT)/sources.list
	apt-get $(APT_PRIVATE) -q=2 update
	cd $(OPUS_APT) && apt-get $(APT_PRIVATE) -q=2 download libopus0
	dpkg -x $(OPUS_APT)/libopus0_*.deb $(OPUS_DIR)/root
	cp -L $(OPUS_DIR)/root/usr/lib/*/libopus.so.0 $@.tmp && mv $@.tmp $@
	rm -rf $(OPUS_APT)/state $(OPUS_APT)/cache

demo: venv opus
	$(VENV)/bin/speechinpaint demo

test: venv opus
	@command -v chromium >/dev/null 2>&1 || [ -n "$${SPEECHINPAINT_CHROMIUM:-}" ] || \
		echo "editor browser tests skipped: no chromium found (apt-get install chromium)"
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo-output
