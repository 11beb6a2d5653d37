#!/usr/bin/env bash
# One calm line per step: "==> Training the Rasa model ... 4 min 12 s". What the step's tools print (pip, uv,
# rasa, ruff...) goes to a log file; when the step fails, its last lines and the log's path are shown.
#
#   Run it:    scripts/step.sh [--log FILE] [--fresh] TITLE COMMAND [ARGUMENT...]
#              (--fresh empties the log first; the exit status is the command's)
#   Source it: source scripts/step.sh; STEP_LOG=FILE; step TITLE COMMAND [ARGUMENT...]; step_note TITLE TEXT
#
# On a terminal the line counts the time and shows the log's latest line while the step runs; elsewhere (CI, a
# docker build) it prints a start line and an end line.

STEP_LOG=${STEP_LOG:-data/logs/step.log}
STEP_TAIL=${STEP_TAIL:-40}  # lines of the log shown when a step fails

_step_now() {  # microseconds since the epoch (whole seconds where bash is older than 5)
  if [[ -n "${EPOCHREALTIME:-}" ]]; then
    local now=${EPOCHREALTIME/[.,]/}  # the decimal separator follows the locale
    echo "$((10#$now))"
  else
    echo "$(($(date +%s) * 1000000))"
  fi
}

step_duration() {  # microseconds -> "0.4 s", "41 s", "4 min 12 s", "1 h 3 min"
  local tenths=$(($1 / 100000)) seconds=$(($1 / 1000000))
  if ((seconds < 10)); then
    printf '%d.%d s' $((tenths / 10)) $((tenths % 10))
  elif ((seconds < 60)); then
    printf '%d s' "$seconds"
  elif ((seconds < 3600)); then
    printf '%d min %d s' $((seconds / 60)) $((seconds % 60))
  else
    printf '%d h %d min' $((seconds / 3600)) $((seconds % 3600 / 60))
  fi
}

_step_styles() {  # bold and red on a terminal only
  if [[ -t 1 ]]; then
    _STEP_BOLD=$'\033[1m' _STEP_DIM=$'\033[2m' _STEP_RED=$'\033[31m' _STEP_OFF=$'\033[0m' _STEP_CLEAR=$'\r\033[K'
  else
    _STEP_BOLD='' _STEP_DIM='' _STEP_RED='' _STEP_OFF='' _STEP_CLEAR=''
  fi
}

_step_latest() {  # the log's latest non-empty line after byte $1, without colours or progress-bar returns
  tail -c +"$(($1 + 1))" "$STEP_LOG" 2>/dev/null | tail -c 4096 | tr '\r' '\n' \
    | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/[[:space:]]\{1,\}/ /g' -e 's/^ //' | grep -v '^ *$' | tail -n 1 || true
}

_step_ticker() {  # title, start, log offset, pid of the shell to outlive: redraws the line once a second
  local title=$1 start=$2 offset=$3 parent=$4 width line text
  set +e +o pipefail  # a subshell: the caller's `set -e` must not end the display at an empty log
  width=$(tput cols 2>/dev/null || echo 80)
  ((width > 20)) || width=80
  while kill -0 "$parent" 2>/dev/null; do
    text="==> $title ... $(step_duration $(($(_step_now) - start)))"
    line=$(_step_latest "$offset")
    if [[ -n "$line" ]] && ((${#text} + 8 < width)); then
      line="  ${line:0:$((width - ${#text} - 3))}"
    else
      line=''
    fi
    printf '%s%s%s%s%s%s' "$_STEP_CLEAR" "$_STEP_BOLD" "${text:0:$((width - 1))}" "$_STEP_OFF$_STEP_DIM" "$line" "$_STEP_OFF"
    sleep 1
  done
}

step_note() {  # title, text: a step with nothing to do ("==> The Rasa model ... up to date")
  _step_styles
  printf '%s==> %s ... %s%s\n' "$_STEP_BOLD" "$1" "$2" "$_STEP_OFF"
}

step() {  # title, command...: runs the command with its output in $STEP_LOG; returns its status
  # Safe in a `set -euo pipefail` caller (setup.sh): nothing here fails but the command, whose status is returned.
  local title=$1 start offset status=0 ticker='' elapsed last
  shift
  _step_styles
  mkdir -p "$(dirname "$STEP_LOG")"
  touch "$STEP_LOG"
  printf '\n==> %s (%s)\n$ %s\n' "$title" "$(date '+%F %T')" "$*" >>"$STEP_LOG"
  offset=$(wc -c <"$STEP_LOG")
  start=$(_step_now)
  if [[ -t 1 ]]; then
    _step_ticker "$title" "$start" "$offset" "$$" &
    ticker=$!
    # shellcheck disable=SC2064  # the ticker's pid now: `ticker` is local to this function
    trap "kill $ticker 2>/dev/null; echo" EXIT  # Ctrl-C: bash leaves through EXIT, the ticker must not linger
  else
    printf '==> %s ...\n' "$title"
  fi
  # The command runs in the foreground (Ctrl-C reaches it as usual); `|| status=$?` keeps `set -e` callers going.
  "$@" >>"$STEP_LOG" 2>&1 </dev/null || status=$?
  elapsed=$(step_duration $(($(_step_now) - start)))
  if [[ -n "$ticker" ]]; then
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    trap - EXIT
  fi
  printf '<== exit %d after %s\n' "$status" "$elapsed" >>"$STEP_LOG"
  if ((status == 0)); then
    if [[ -n "$ticker" ]]; then
      printf '%s%s==> %s ... %s%s\n' "$_STEP_CLEAR" "$_STEP_BOLD" "$title" "$elapsed" "$_STEP_OFF"
    else
      printf '    done in %s\n' "$elapsed"
    fi
    return 0
  fi
  if [[ -n "$ticker" ]]; then
    printf '%s%s%s==> %s ... failed after %s%s\n' "$_STEP_CLEAR" "$_STEP_BOLD" "$_STEP_RED" "$title" "$elapsed" "$_STEP_OFF"
  else
    printf '    failed after %s\n' "$elapsed"
  fi
  last=$(tail -c +"$((offset + 1))" "$STEP_LOG" | tr '\r' '\n' | grep -v '^[[:space:]]*$' | grep -v '^<== exit' \
    | tail -n "$STEP_TAIL" || true)
  {
    if [[ -n "$last" ]]; then
      printf '\n%s failed (exit %d). The last lines of its output:\n\n%s\n' "$title" "$status" "$last"
    else
      printf '\n%s failed (exit %d) and printed nothing.\n' "$title" "$status"
    fi
    printf '\nThe whole output: %s\n' "$(cd "$(dirname "$STEP_LOG")" && pwd)/$(basename "$STEP_LOG")"
  } >&2
  return "$status"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then  # run, not sourced
  set -uo pipefail
  fresh=''
  while [[ $# -gt 0 ]]; do
    case $1 in
      --log) STEP_LOG=$2; shift 2 ;;
      --fresh) fresh=1; shift ;;
      *) break ;;
    esac
  done
  if [[ $# -lt 2 ]]; then
    echo "usage: scripts/step.sh [--log FILE] [--fresh] TITLE COMMAND [ARGUMENT...]" >&2
    exit 2
  fi
  if [[ -n "$fresh" ]]; then
    mkdir -p "$(dirname "$STEP_LOG")"
    : >"$STEP_LOG"
  fi
  step "$@"
  exit
fi
