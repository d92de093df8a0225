# Two commands set everything up: `make demo` and `make test`.
# On a machine without an NVIDIA GPU, torch is pinned to the CPU build so no multi-GB CUDA wheel is pulled.
VENV := .venv
PY := $(VENV)/bin/python
TORCH_CPU := torch==2.13.0
CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: demo test venv clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install -q torch; \
	else \
		$(PY) -m pip install -q $(TORCH_CPU) || $(PY) -m pip install -q --index-url $(CPU_INDEX) torch; \
	fi
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/speechinpaint demo

test: venv
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo-output
