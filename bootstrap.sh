# Sourced by ./run-app and ./run-tests: a project venv with the pinned packages.
# Installs only what is missing, so a second run starts at once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "Need root (or sudo) to run: $*" >&2; return 1; fi; }

apt_install() {
  command -v apt-get >/dev/null || { echo "Please install: $*" >&2; return 1; }
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1))." >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv…"
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian and Ubuntu ship venv separately.
    apt_install "python3-venv" || apt_install "python$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
    "$PYTHON" -m venv .venv
  fi
fi

stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "Installing Python packages…"
  # Quiet unless it fails: then the whole pip log is shown.
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -r requirements.txt; } > .venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    echo "Installing the Python packages failed (log above, also in .venv/pip.log)." >&2
    exit 1
  fi
  echo "$wanted" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# The message catalogs the app reads are built from the .po files in the repo.
.venv/bin/python -m webapp.i18n >/dev/null
