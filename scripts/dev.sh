#!/usr/bin/env bash
# Set up the development environment (idempotent) and run one job.
#   bash scripts/dev.sh demo    set up .venv, then run the demo on the built-in ViTPose pair
#   bash scripts/dev.sh test    set up .venv, then run the test suite (what CI runs)
#   bash scripts/dev.sh setup   only set up
# A second run skips what is done: the setup is keyed on pyproject.toml and this script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
TORCH_VERSION="2.13.0"
PADDLEFORMERS_VERSION="1.2.0"
TORCHVISION_VERSION="0.28.0"  # the [ports] extra: torchvision's release for torch 2.13.0

stamp_key() {
  cat pyproject.toml scripts/dev.sh | sha256sum | cut -c1-16
}

setup() {
  local stamp="$VENV/.padiff-ir-setup-$(stamp_key)"
  if [ -f "$stamp" ]; then
    return 0
  fi
  echo "[setup] preparing $VENV" >&2
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # torch first, pinned to the CPU build on disk: anything else pulls a multi-GB CUDA build.
  if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    "$PY" -m pip install --quiet "torch==$TORCH_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
  fi
  # [ports]: torchvision with --no-deps, so that pip cannot swap the CPU torch for another build
  if ! "$PY" -m pip show torchvision 2>/dev/null | grep -qx "Version: $TORCHVISION_VERSION"; then
    "$PY" -m pip install --quiet --no-deps "torchvision==$TORCHVISION_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
  fi
  # [test], [explorer] (Model Explorer for its browser test), [ports] (the real-ports corpus) and
  # [distributed] (Ray, for the sharded-runs compare stage)
  "$PY" -m pip install --quiet -e ".[test,explorer,ports,distributed]" 2>&1 | grep -vE "^WARNING: Location|BuildBackendWarning|^ +|^$" || true
  # [ports]: PaddleFormers for the decoder ports, without its pins (transformers<5.4, paddlefleet...)
  "$PY" -m pip install --quiet --no-deps "paddleformers==$PADDLEFORMERS_VERSION" "aistudio-sdk==0.3.9" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$PY" -c "import torch, paddle, paddle2onnx, onnx, onnxruntime, onnxscript, networkx, rich, padiff_ir, model_explorer_onnx" >/dev/null 2>&1 \
    || { echo "[setup] dependencies failed to import" >&2; exit 2; }
  rm -f "$VENV"/.padiff-ir-setup-*
  touch "$stamp"
  echo "[setup] done" >&2
}

ensure_chromium() {
  # The HTML report's browser tests drive Debian's chromium with Playwright (never
  # "playwright install": it downloads a browser, which this network does not allow).
  if command -v chromium >/dev/null 2>&1; then
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "[setup] installing chromium for the report's browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/dev/null 2>&1 || echo "[setup] could not install chromium: browser tests will skip" >&2
  fi
}

job=${1:-test}
shift || true
case "$job" in
  setup) setup ;;
  demo)
    setup
    exec "$VENV/bin/padiff-ir" demo "$@"
    ;;
  test)
    setup
    ensure_chromium
    set +e
    "$PY" -m pytest -q "$@"
    rc=$?
    set -e
    # pytest exits 5 when it collected no test: that is a failure of the suite here too.
    exit $rc
    ;;
  *)
    echo "usage: bash scripts/dev.sh {demo|test|setup} [args...]" >&2
    exit 2
    ;;
esac
