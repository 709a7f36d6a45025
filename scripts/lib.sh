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

# Node tools (tests/node/package.json, pinned by its package-lock.json): Microsoft's SARIF validator (ships its
# Linux binary, and the SARIF 2.1.0 schema) and playwright-core, which drives Debian's chromium for the HTML
# report's browser tests. Installed with `npm ci` outside the clone, again only when the lock file changes.
NODE_DIR=${KEYAUDIT_NODE_DIR:-$HOME/.cache/keyaudit-node}
export KEYAUDIT_SARIF_MULTITOOL=$NODE_DIR/node_modules/.bin/sarif-multitool
export KEYAUDIT_SARIF_SCHEMA=$NODE_DIR/node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json
export KEYAUDIT_NODE_MODULES=$NODE_DIR/node_modules
export KEYAUDIT_CHROMIUM=${KEYAUDIT_CHROMIUM:-/usr/bin/chromium}

ensure_node_tools() {
  local lock="$ROOT/tests/node/package-lock.json" stamp="$NODE_DIR/.lock.sha256"
  local want; want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the pinned Node tools (tests/node/package-lock.json)"
    mkdir -p "$NODE_DIR"
    cp "$ROOT/tests/node/package.json" "$lock" "$NODE_DIR/"
    npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
  # npm may not run the package's install script (which only marks the binary executable).
  chmod u+x "$NODE_DIR/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
}

# Debian's chromium, for the HTML report's browser tests (playwright-core cannot download a browser here).
ensure_chromium() {
  if [ ! -x "$KEYAUDIT_CHROMIUM" ]; then
    echo "==> installing Debian's chromium"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
}

# Starts the bundled emulator in the background, its output in $1; sets EMULATOR_URL and EMULATOR_PID. Extra
# arguments go to the launcher (e.g. --port 4566).
start_emulator() {
  local log=$1; shift
  "$KEYAUDIT_EMULATOR_PYTHON" "$ROOT/tests/emulator/keyaudit_emulator.py" "$@" > "$log" 2>&1 &
  EMULATOR_PID=$!
  EMULATOR_URL=""
  for _ in $(seq 1 100); do
    EMULATOR_URL=$(sed -n 's/^KEYAUDIT_EMULATOR_READY //p' "$log")
    [ -n "$EMULATOR_URL" ] && return 0
    kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.2
  done
  echo "the emulator did not start"; cat "$log"; return 1
}

# The environment that points keyaudit (and the AWS CLI) at the emulator, as the demo organization's caller.
emulator_env() {
  echo "AWS_ENDPOINT_URL=$EMULATOR_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE" \
    "AWS_SECRET_ACCESS_KEY=demo-not-a-secret AWS_EC2_METADATA_DISABLED=true"
}
