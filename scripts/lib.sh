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

# Microsoft's SARIF validator (npm; ships its Linux binary) and the SARIF 2.1.0 schema it carries.
SARIF_MULTITOOL_VERSION=5.7.0
NODE_DIR=${KEYAUDIT_NODE_DIR:-$HOME/.cache/keyaudit-node}
export KEYAUDIT_SARIF_MULTITOOL=$NODE_DIR/node_modules/.bin/sarif-multitool
export KEYAUDIT_SARIF_SCHEMA=$NODE_DIR/node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json

ensure_node_tools() {
  local pkg="$NODE_DIR/node_modules/@microsoft/sarif-multitool/package.json"
  if ! grep -q "\"version\": \"$SARIF_MULTITOOL_VERSION\"" "$pkg" 2>/dev/null; then
    echo "==> installing @microsoft/sarif-multitool $SARIF_MULTITOOL_VERSION"
    mkdir -p "$NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --no-save --loglevel=error \
      "@microsoft/sarif-multitool@$SARIF_MULTITOOL_VERSION"
  fi
  # npm may not run the package's install script (which only marks the binary executable).
  chmod u+x "$NODE_DIR/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
}
