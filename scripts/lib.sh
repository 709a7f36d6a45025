# Shared set-up for scripts/test and scripts/demo: the Rust target dir outside the clone, and the Python venv
# with the emulator's pinned requirements (re-installed only when tests/emulator/requirements.txt changes).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/keyaudit-target}
VENV=${KEYAUDIT_VENV:-$HOME/.cache/keyaudit-venv}
export KEYAUDIT_EMULATOR_PYTHON=$VENV/bin/python

ensure_venv() {
  local req="$ROOT/tests/emulator/requirements.txt" stamp="$VENV/.requirements.sha256"
  local want; want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating the emulator venv in $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the emulator's pinned requirements"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}
