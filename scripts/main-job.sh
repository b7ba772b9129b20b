#!/usr/bin/env bash
# The main job: install what is needed, build libmixflow, and run the C example end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
make -C examples/c run
