#!/usr/bin/env bash
# Set-up shared by `make run` and `make test`: both Python environments, the trained Rasa model and the
# database schema. Heavy parts are cached by a hash of their inputs, so a second run does nothing.
#   .venv       -> the application (Python >= 3.11), from requirements/app.lock
#   .venv-rasa  -> Rasa 3.6 (Python 3.10), from requirements/rasa.lock
#   models/current.tar.gz -> the model trained from config.yml, domain/, nlu_data/, dialogues/
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${NEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/neet-assistant}"
mkdir -p "$CACHE" models data
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

python_version_ok() {  # interpreter, major.minor -> true when it runs and has that version
  "$1" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$2' else 1)" >/dev/null 2>&1
}

find_python() {  # major.minor -> path of a working interpreter, or nothing
  local want=$1 candidate
  for candidate in "python$want" "$(command -v pyenv >/dev/null && pyenv root 2>/dev/null)/versions/"*"/bin/python$want"; do
    if [[ -n "$candidate" ]] && python_version_ok "$candidate" "$want"; then command -v "$candidate"; return; fi
  done
  if command -v uv >/dev/null && candidate=$(uv python find "$want" 2>/dev/null) && python_version_ok "$candidate" "$want"; then
    echo "$candidate"; return
  fi
  if [[ "$want" == 3.11 ]]; then  # the application also runs on a newer Python 3
    for candidate in python3.12 python3.13 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        command -v "$candidate"; return
      fi
    done
  fi
}

link_env() {  # cached env dir, link name
  ln -sfn "$1" "$2.tmp" && mv -T "$2.tmp" "$2"
}

# --- the application environment --------------------------------------------------------------
PY_APP=$(find_python 3.11)
# The real file, not a link to it: the environment must not depend on a link that may go (a test's temp folder).
[[ -z "$PY_APP" ]] || PY_APP=$(readlink -f "$PY_APP")
[[ -n "$PY_APP" ]] || die "Python 3.11 or newer is needed for the application. Install it (for instance 'pyenv install 3.11' or your system's python3.11 package) and run again."
APP_KEY=$(hash_of requirements/app.lock <("$PY_APP" -c 'import sys; print(sys.version)'))
APP_ENV="$CACHE/venv-app-$APP_KEY"
if [[ ! -f "$APP_ENV/.complete" ]]; then
  say "Creating the application environment (Python $("$PY_APP" -V 2>&1 | cut -d' ' -f2))"
  rm -rf "$APP_ENV"
  "$PY_APP" -m venv "$APP_ENV"
  "$APP_ENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/app.lock \
    || { rm -rf "$APP_ENV"; die "installing the application's packages failed (see above)"; }
  touch "$APP_ENV/.complete"  # an interrupted install is redone, never half-used
fi
link_env "$APP_ENV" .venv

# --- the Rasa environment -----------------------------------------------------------------------
PY_RASA=$(find_python 3.10)
if [[ -z "$PY_RASA" ]] && command -v pyenv >/dev/null && PYENV_VERSION=3.10.13 python3.10 -V >/dev/null 2>&1; then
  PY_RASA=$(PYENV_VERSION=3.10.13 pyenv which python3.10)
fi
[[ -n "$PY_RASA" ]] || die "Python 3.10 is needed for Rasa 3.6 and none was found. Install it with 'pyenv install 3.10.13' (or 'uv python install 3.10', or your system's python3.10 package) and run again."
RASA_KEY=$(hash_of requirements/rasa.lock <("$PY_RASA" -c 'import sys; print(sys.version)'))
RASA_ENV="$CACHE/venv-rasa-$RASA_KEY"
if [[ ! -f "$RASA_ENV/.complete" ]]; then
  say "Creating the Rasa environment (Python $("$PY_RASA" -V 2>&1 | cut -d' ' -f2)); this takes a few minutes once"
  rm -rf "$RASA_ENV"
  .venv/bin/uv venv --quiet --python "$PY_RASA" "$RASA_ENV"
  .venv/bin/uv pip install --quiet --python "$RASA_ENV/bin/python" --require-hashes -r requirements/rasa.lock \
    || { rm -rf "$RASA_ENV"; die "installing Rasa failed (see above)"; }
  touch "$RASA_ENV/.complete"
fi
link_env "$RASA_ENV" .venv-rasa

# --- the Rasa model -----------------------------------------------------------------------------
MODEL_INPUTS=$(find config.yml domain nlu_data dialogues -type f -name '*.yml' | LC_ALL=C sort)
MODEL_KEY=$(hash_of requirements/rasa.lock $MODEL_INPUTS <(echo "$MODEL_INPUTS"))
MODEL="$CACHE/models/model-$MODEL_KEY.tar.gz"
if [[ ! -f "$MODEL" ]]; then
  say "Training the Rasa model (its inputs changed); about four minutes"
  mkdir -p "$CACHE/models"
  RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/rasa train \
    --config config.yml --domain domain --data nlu_data dialogues \
    --out "$CACHE/models" --fixed-model-name "partial-$MODEL_KEY" --quiet
  mv "$CACHE/models/partial-$MODEL_KEY.tar.gz" "$MODEL"
fi
ln -sfn "$MODEL" models/current.tar.gz

# --- the database -------------------------------------------------------------------------------
.venv/bin/python -m bot migrate
