#!/usr/bin/env bash
# The main job: install what is needed, build libmixflow and the `mixflow` tool, and post-train two bases on
# Fashion-MNIST with standard flow matching and with MixFlow from the same weights, seed and minibatches, printing
# the FD tables (base / standard / MixFlow at 10, 20, 50 Euler and Heun grid points):
#   1. the shipped, converged base (models/fmnist-base): its sampling path does not lag, MixFlow hurts;
#   2. a base whose path lags (models/fmnist-lagging: a small SiT after 1000 steps): MixFlow helps.
# `mixflow posttrain` prints the Slow Flow advice for each (results/regimes: when MixFlow helps). 3.5 min
# on 2 idle cores of an AVX-512 Xeon, 7 min on an AMD EPYC Zen 1 (packages installed, library built); outputs in
# runs/posttrain and runs/posttrain-lagging
# (rerunning resumes; Ctrl-C saves). Extra
# arguments go to the first `mixflow posttrain` (see `scripts/mixflow posttrain --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
echo; echo "==== 1/2: the shipped base (converged; does not lag)"
scripts/mixflow posttrain "$@"
echo; echo "==== 2/2: a base that lags along its own path (models/fmnist-lagging/small-1k.onnx)"
scripts/mixflow posttrain --base models/fmnist-lagging/small-1k.onnx --out runs/posttrain-lagging
