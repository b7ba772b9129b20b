#!/usr/bin/env bash
# The main job: install what is needed, build libmixflow and the `mixflow` tool, and post-train the shipped
# base model (models/fmnist-base/base.onnx) on Fashion-MNIST with standard flow matching and with MixFlow,
# then print the FD table (base / standard / MixFlow at 10, 20, 50 Euler and Heun grid points).
# About 5 minutes on 2 cores; outputs in runs/posttrain (rerunning resumes; Ctrl-C saves). Extra arguments go
# to `mixflow posttrain` (see `scripts/mixflow posttrain --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
exec scripts/mixflow posttrain "$@"
