#!/usr/bin/env bash
# Set-up shared by `make run`, `make test` and the Dockerfile: both Python environments, the trained Rasa model
# and the database schema. Heavy parts are cached by a hash of their inputs, so a second run does nothing.
#
#   scripts/setup.sh [app] [rasa] [model] [database]      (no step: all four, in this order)
#
#   app       .venv       -> the application (Python >= 3.11), from requirements/app.lock
#   rasa      .venv-rasa  -> Rasa 3.6 (Python 3.10), from requirements/rasa.lock
#   model     models/current.tar.gz -> the model trained from config.yml, domain/, nlu_data/, dialogues/
#   database  the schema of DATABASE_URL (`python -m bot migrate`)
#
# One line per step; what pip, uv and rasa print goes to data/logs/setup.log (shown when a step fails).
# Variables, all optional:
#   NEET_CACHE_DIR     the cache of environments and models (~/.cache/neet-assistant)
#   NEET_APP_ENV       the application environment's folder (default: in the cache, named by its hash)
#   NEET_RASA_ENV      the Rasa environment's folder (likewise)
#   NEET_APP_DEPS      "all": the whole lock, development tools included (default); "runtime": what the
#                      application runs on only (deploy/runtime_requirements.py; the image)
#   NEET_PYTHON_APP, NEET_PYTHON_RASA   the interpreters (default: searched on the PATH, in pyenv, through uv)
#   NEET_LOG           the log file (data/logs/setup.log)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/step.sh
source scripts/step.sh

CACHE="${NEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/neet-assistant}"
APP_DEPS="${NEET_APP_DEPS:-all}"
STEP_LOG="${NEET_LOG:-data/logs/setup.log}"
die() {
  if [[ -t 2 ]]; then printf '\033[31merror: %s\033[0m\n' "$*" >&2; else printf 'error: %s\n' "$*" >&2; fi
  exit 1
}
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

python_version() { "$1" -c 'import platform; print(platform.python_version())'; }

link_env() {  # env dir, link name
  ln -sfn "$1" "$2.tmp" && mv -T "$2.tmp" "$2"
}

env_ready() {  # env dir, key -> true when it was completed for this key
  [[ -f "$1/.complete" ]] || return 1
  local recorded
  recorded=$(<"$1/.complete")
  # An environment named by its key may have an empty marker (written so by earlier versions of this script).
  [[ "$recorded" == "$2" || (-z "$recorded" && "$1" == *"-$2") ]]
}

uv_bin() {  # the uv of the application environment (from the lock), else the one on the PATH
  if [[ -x .venv/bin/uv ]]; then echo .venv/bin/uv; else command -v uv || true; fi
}

# --- the application environment --------------------------------------------------------------
install_app() {  # env dir, requirements file, key; every command checked: `set -e` does not reach in here
  rm -rf "$1" || return
  "$PY_APP" -m venv "$1" || return
  "$1/bin/pip" install --disable-pip-version-check --require-hashes --no-deps -r "$2" \
    || { rm -rf "$1"; return 1; }
  echo "$3" >"$1/.complete"  # an interrupted install is redone, never half-used
}

step_app() {
  local requirements=requirements/app.lock key env title
  PY_APP=${NEET_PYTHON_APP:-$(find_python 3.11)}
  # The real file, not a link to it: the environment must not depend on a link that may go (a test's temp folder).
  [[ -z "$PY_APP" ]] || PY_APP=$(readlink -f "$(command -v "$PY_APP")" || true)
  [[ -n "$PY_APP" ]] || die "Python 3.11 or newer is needed for the application. Install it (for instance 'pyenv install 3.11' or your system's python3.11 package) and run again."
  case $APP_DEPS in
    all) ;;
    runtime)
      requirements=$(mktemp)
      "$PY_APP" deploy/runtime_requirements.py requirements/app.lock pyproject.toml >"$requirements" \
        || die "could not take the runtime part of requirements/app.lock"
      ;;
    *) die "NEET_APP_DEPS=$APP_DEPS: expected 'all' or 'runtime'" ;;
  esac
  key=$(hash_of "$requirements" <("$PY_APP" -c 'import sys; print(sys.version)'))
  env=${NEET_APP_ENV:-$CACHE/venv-app-$key}
  title="Installing the application (Python $(python_version "$PY_APP"))"
  if env_ready "$env" "$key"; then
    step_note "${title/Installing/The environment of}" "up to date"
  else
    mkdir -p "$(dirname "$env")"
    step "$title" install_app "$env" "$requirements" "$key" || exit 1
  fi
  [[ "$requirements" == requirements/app.lock ]] || rm -f "$requirements"
  link_env "$env" .venv
}

# --- the Rasa environment -----------------------------------------------------------------------
install_rasa() {  # env dir, key
  local uv
  uv=$(uv_bin)
  [[ -n "$uv" ]] || { echo "uv is needed to install Rasa: run the app step first, or put uv on the PATH"; return 1; }
  rm -rf "$1" || return
  "$uv" venv --python "$PY_RASA" "$1" || return
  "$uv" pip install --python "$1/bin/python" --require-hashes -r requirements/rasa.lock || { rm -rf "$1"; return 1; }
  echo "$2" >"$1/.complete"
}

step_rasa() {
  local key env title
  PY_RASA=${NEET_PYTHON_RASA:-$(find_python 3.10)}
  if [[ -z "$PY_RASA" ]] && command -v pyenv >/dev/null && PYENV_VERSION=3.10.13 python3.10 -V >/dev/null 2>&1; then
    PY_RASA=$(PYENV_VERSION=3.10.13 pyenv which python3.10)
  fi
  [[ -n "$PY_RASA" ]] || die "Python 3.10 is needed for Rasa 3.6 and none was found. Install it with 'pyenv install 3.10.13' (or 'uv python install 3.10', or your system's python3.10 package) and run again."
  key=$(hash_of requirements/rasa.lock <("$PY_RASA" -c 'import sys; print(sys.version)'))
  env=${NEET_RASA_ENV:-$CACHE/venv-rasa-$key}
  title="Installing Rasa 3.6 (Python $(python_version "$PY_RASA")); a few minutes, once"
  if env_ready "$env" "$key"; then
    step_note "The environment of Rasa 3.6 (Python $(python_version "$PY_RASA"))" "up to date"
  else
    mkdir -p "$(dirname "$env")"
    step "$title" install_rasa "$env" "$key" || exit 1
  fi
  link_env "$env" .venv-rasa
}

# --- the Rasa model -----------------------------------------------------------------------------
train() {  # key, model
  RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 .venv-rasa/bin/rasa train \
    --config config.yml --domain domain --data nlu_data dialogues \
    --out "$CACHE/models" --fixed-model-name "partial-$1" || return
  mv "$CACHE/models/partial-$1.tar.gz" "$2"
}

step_model() {
  [[ -x .venv-rasa/bin/rasa ]] || die "the Rasa environment is missing: run 'scripts/setup.sh rasa' first"
  local inputs key model
  # The training data and the code of the custom components (nlu/ and the normalisation they call).
  inputs=$( (find config.yml domain nlu_data dialogues -type f -name '*.yml'
    find nlu -type f -name '*.py'
    echo bot/understanding/normalise.py) | LC_ALL=C sort)
  # shellcheck disable=SC2086  # one file name per word: the inputs have no spaces
  key=$(hash_of requirements/rasa.lock $inputs <(echo "$inputs"))
  model="$CACHE/models/model-$key.tar.gz"
  if [[ -f "$model" ]]; then
    step_note "The Rasa model" "up to date"
  else
    mkdir -p "$CACHE/models"
    step "Training the Rasa model (its inputs changed); about four minutes" train "$key" "$model" || exit 1
  fi
  ln -sfn "$model" models/current.tar.gz
}

# --- the database -------------------------------------------------------------------------------
step_database() {
  [[ -x .venv/bin/python ]] || die "the application environment is missing: run 'scripts/setup.sh app' first"
  step "Migrating the database" .venv/bin/python -m bot migrate || exit 1
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(app rasa model database)
for name in "${steps[@]}"; do
  case $name in
    app | rasa | model | database) ;;
    *) echo "usage: scripts/setup.sh [app] [rasa] [model] [database]   (no step: all four)" >&2; exit 2 ;;
  esac
done

mkdir -p "$CACHE" models data "$(dirname "$STEP_LOG")"
: >"$STEP_LOG"
started=$(_step_now)
for name in "${steps[@]}"; do
  "step_$name"
done
printf 'Set-up ready in %s (what the tools printed: %s)\n' "$(step_duration $(($(_step_now) - started)))" "$STEP_LOG"
