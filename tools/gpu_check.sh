#!/usr/bin/env bash
# The one GPU script of shared/GPU.md: configures and builds stepwise with the CUDA backend (build/cuda-release,
# -j$(nproc)), runs `ctest -L gpu`, `stepwise bench kernels`, `stepwise bench train` on step3-mini (cuda, seq 2048,
# batch 8) and `stepwise bench decode --device cuda`, each step time-boxed, and prints a short table last. With OUT
# set, the table is also written to $OUT/gpu_check.txt and each step's full log to $OUT/<step>.log (8 files in all);
# without OUT, both go to build/gpu_check/.
#
# The H200 machine has no cpp-httplib (the Debian header alone does not help: it only declares what Debian's
# libcpp-httplib.so implements). Once, on the CPU machine, in the checkout that travels:
#     tools/gpu_check.sh --prepare
# fetches Debian's cpp-httplib 0.11.4 source package (apt-get source) and keeps its upstream single header, patched
# as Debian patches it, with a pkg-config file, in third_party/httplib/ (ignored by git). Then, with the device tool:
#     run(command="bash tools/gpu_check.sh", carry=["third_party"], timeout_s=600)
# The script points PKG_CONFIG_PATH at third_party/httplib/pkgconfig when the system has no cpp-httplib.
#
# Time: GPU_CHECK_BUDGET seconds in all (default 540); each step also has its own cap (GPU_CHECK_<STEP>_S below).
# Without a GPU (e.g. the CPU machine) it still configures, builds and runs the (skipping) GPU tests, then reports the
# missing device. Exit status: 0 all steps passed; 1 some step failed or timed out; 2 no GPU found.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

HTTPLIB_DIR=third_party/httplib

prepare_httplib() {
  if [ -f "$HTTPLIB_DIR/httplib.h" ] && [ -f "$HTTPLIB_DIR/pkgconfig/cpp-httplib.pc" ]; then
    echo "gpu_check --prepare: $HTTPLIB_DIR already holds httplib.h and its pkg-config file"
    return 0
  fi
  local work
  work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/pkg"
  # A private deb-src list: the system's apt configuration is left as it is.
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n' \
    >"$work/sources.list"
  local apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
                  -o "Dir::State::Lists=$work/lists")
  if ! apt-get "${apt_opts[@]}" update >"$work/apt.log" 2>&1 ||
     ! (cd "$work/pkg" && apt-get "${apt_opts[@]}" source --download-only cpp-httplib >>"$work/apt.log" 2>&1); then
    echo "gpu_check --prepare: apt-get source cpp-httplib failed:" >&2
    tail -5 "$work/apt.log" >&2
    return 1
  fi
  mkdir -p "$work/src"
  tar -xf "$work"/pkg/cpp-httplib_*.orig.tar.* -C "$work/src" --strip-components=1 &&
    tar -xf "$work"/pkg/cpp-httplib_*.debian.tar.* -C "$work/src" || return 1
  if [ -f "$work/src/debian/patches/series" ]; then
    local p
    while read -r p; do
      case "$p" in ''|'#'*) continue ;; esac
      (cd "$work/src" && patch -s -p1 <"debian/patches/$p") || { echo "gpu_check --prepare: patch $p failed" >&2; return 1; }
    done <"$work/src/debian/patches/series"
  fi
  local version
  version=$(sed -n 's/^#define CPPHTTPLIB_VERSION "\(.*\)"/\1/p' "$work/src/httplib.h")
  mkdir -p "$HTTPLIB_DIR/pkgconfig"
  cp "$work/src/httplib.h" "$work/src/LICENSE" "$HTTPLIB_DIR/"
  cat >"$HTTPLIB_DIR/pkgconfig/cpp-httplib.pc" <<EOF
# Written by tools/gpu_check.sh --prepare: cpp-httplib's upstream single header (header-only, no TLS) for machines
# without the package.
prefix=\${pcfiledir}/..
includedir=\${prefix}

Name: cpp-httplib
Description: C++ HTTP server and client library (header-only copy)
Version: ${version:-unknown}
Libs:
Cflags: -I\${includedir}
EOF
  rm -rf "$work"
  echo "gpu_check --prepare: $HTTPLIB_DIR holds cpp-httplib ${version:-?} (header-only); carry third_party"
}

if [ "${1:-}" = "--prepare" ]; then
  prepare_httplib
  exit $?
fi
if [ $# -gt 0 ]; then
  echo "usage: tools/gpu_check.sh [--prepare]" >&2
  exit 2
fi

BUDGET=${GPU_CHECK_BUDGET:-540}
LOG_DIR=${OUT:-build/gpu_check}
BUILD=build/cuda-release
STEPWISE=$BUILD/tools/stepwise
mkdir -p "$LOG_DIR"
START=$SECONDS
NAMES=() STATUSES=() TIMES=()
FAILED=0

# run_step NAME CAP_SECONDS LOG [--show] -- COMMAND...: runs COMMAND under `timeout` (the smaller of CAP_SECONDS and
# what is left of the budget), its output into LOG (and on the terminal with --show); records status and seconds.
# Returns the command's exit status (124 on timeout, 125 when the budget was already spent).
run_step() {
  local name=$1 cap=$2 log=$3 show=0
  shift 3
  if [ "$1" = "--show" ]; then show=1; shift; fi
  shift   # --
  local left=$((BUDGET - (SECONDS - START)))
  if [ "$left" -lt 10 ]; then
    record "$name" "skipped: time budget spent" 0
    return 125
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "== $name (at most ${cap}s): $*"
  local t0=$SECONDS rc
  if [ "$show" = 1 ]; then
    timeout --kill-after=10 "$cap" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
  else
    timeout --kill-after=10 "$cap" "$@" >"$log" 2>&1
    rc=$?
  fi
  local took=$((SECONDS - t0)) status
  case $rc in
    0) status="ok" ;;
    124|137) status="TIMED OUT after ${cap}s" ;;
    *) status="FAILED (exit $rc)" ;;
  esac
  if [ "$rc" != 0 ]; then
    FAILED=1
    [ "$show" = 1 ] || { echo "   last lines of $log:"; tail -15 "$log" | sed 's/^/   | /'; }
  fi
  record "$name" "$status" "$took"
  return "$rc"
}

record() {
  NAMES+=("$1") STATUSES+=("$2") TIMES+=("$3")
  echo "== $1: $2 (${3}s)"
}

# Replaces the status of the last recorded step.
restatus() { STATUSES[${#STATUSES[@]}-1]=$1; }

# --- environment ---------------------------------------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && COMMIT="$COMMIT (+ uncommitted changes)"
GPU=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
HAVE_GPU=1
[ -n "$GPU" ] || { GPU="none found (nvidia-smi missing or lists no device)"; HAVE_GPU=0; }
NVCC=$( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)
HTTPLIB="system package"
if ! pkg-config --exists cpp-httplib 2>/dev/null; then
  if [ -f "$HTTPLIB_DIR/pkgconfig/cpp-httplib.pc" ]; then
    export PKG_CONFIG_PATH="$PWD/$HTTPLIB_DIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    HTTPLIB="carried copy in $HTTPLIB_DIR"
  else
    HTTPLIB="MISSING: run tools/gpu_check.sh --prepare on the CPU machine and carry third_party"
  fi
fi
HEADER="gpu_check: commit $COMMIT, $(date -u '+%Y-%m-%d %H:%M UTC'), GPU: $GPU, nvcc ${NVCC:-not found}, $(nproc) cores, cpp-httplib: $HTTPLIB"
echo "$HEADER"

# --- configure and build ---------------------------------------------------------------------------------------------
# The build keeps going past a failing target (ninja -k 0): one file that does not compile there must not cost the
# tests and benchmarks that did build. BUILT: 1 all built; 2 some target failed but the tests still run (an executable
# that is missing fails as "Not Run") and the benchmarks run when the stepwise binary was linked; 0 nothing to run.
BUILT=0
if run_step "configure" "${GPU_CHECK_CONFIGURE_S:-90}" "$LOG_DIR/configure.log" -- cmake --preset cuda-release; then
  mapfile -t GPU_TESTS < <(ctest --test-dir "$BUILD" -L gpu -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: *//p')
  if run_step "build (stepwise + ${#GPU_TESTS[@]} GPU tests)" "${GPU_CHECK_BUILD_S:-330}" "$LOG_DIR/build.log" -- \
      cmake --build "$BUILD" -j"$(nproc)" --target stepwise "${GPU_TESTS[@]}" -- -k 0; then
    BUILT=1
  else
    BUILT=2
    [ -x "$STEPWISE" ] || restatus "${STATUSES[-1]} (no stepwise binary: benchmarks not run)"
  fi
fi

# --- GPU tests and benchmarks ----------------------------------------------------------------------------------------
if [ "$BUILT" != 0 ]; then
  # Each test at most 60 s (they need seconds; the longest, a 200-step training beside the CPU model, ~10 s), so
  # that one hanging kernel fails its own test and the others still run inside the step's cap.
  run_step "ctest -L gpu" "${GPU_CHECK_CTEST_S:-120}" "$LOG_DIR/ctest_gpu.log" -- \
    ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 60
  summary=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$LOG_DIR/ctest_gpu.log" | tail -1)
  [ -n "$summary" ] && restatus "${STATUSES[-1]}: $summary"
  [ "$HAVE_GPU" = 0 ] && restatus "${STATUSES[-1]} (no GPU: the tests skip)"
else
  record "ctest -L gpu" "not run: no build" 0
fi

bench_step() {   # bench_step NAME CAP LOG SUBCOMMAND -- ARGS...: runs `stepwise bench SUBCOMMAND ARGS...`
  local name=$1 cap=$2 log=$3 sub=$4
  shift 5
  if [ "$BUILT" = 0 ] || [ ! -x "$STEPWISE" ]; then record "$name" "not run: no stepwise binary" 0; return; fi
  if [ "$HAVE_GPU" = 0 ]; then record "$name" "skipped: no GPU" 0; return; fi
  # A --device option (or the subcommand itself) missing from --help means the CUDA path is not implemented yet.
  local help
  if ! help=$(timeout 20 "$STEPWISE" bench "$sub" --help 2>&1); then
    echo "$help" >"$log"
    record "$name" "not implemented (no 'bench $sub' command)" 0
    return
  fi
  if [[ " $* " == *" --device "* ]] && ! grep -q -- "--device" <<<"$help"; then
    echo "$help" >"$log"
    record "$name" "not implemented ('bench $sub' has no --device option)" 0
    return
  fi
  run_step "$name" "$cap" "$log" --show -- "$STEPWISE" bench "$sub" "$@"
}

bench_step "bench kernels" "${GPU_CHECK_KERNELS_S:-120}" "$LOG_DIR/bench_kernels.log" kernels -- \
  --json "$LOG_DIR/bench_kernels.json"
bench_step "bench train step3-mini cuda" "${GPU_CHECK_TRAIN_S:-120}" "$LOG_DIR/bench_train.log" train -- \
  --model recipes/models/step3-mini.yaml --device cuda --seqs 2048 --batch 8
# Up to 90 s (the budget still clamps it): drawing step3-mini's 363M random weights on the host alone takes ~30 s.
bench_step "bench decode cuda" "${GPU_CHECK_DECODE_S:-90}" "$LOG_DIR/bench_decode.log" decode -- --device cuda

# --- the short table, last -------------------------------------------------------------------------------------------
{
  echo
  echo "$HEADER"
  printf '%-38s %-60s %7s\n' "step" "status" "seconds"
  for i in "${!NAMES[@]}"; do printf '%-38s %-60s %7s\n' "${NAMES[$i]}" "${STATUSES[$i]}" "${TIMES[$i]}"; done
  echo "total: $((SECONDS - START)) s of a ${BUDGET} s budget; logs in $LOG_DIR"
  if [ -f "$LOG_DIR/bench_kernels.log" ] && grep -q '^GPU.md targets (' "$LOG_DIR/bench_kernels.log"; then
    echo
    sed -n '/^GPU.md targets (/,$p' "$LOG_DIR/bench_kernels.log" | grep -v '^wrote '
  fi
  if [ -f "$LOG_DIR/bench_train.log" ] && grep -q 'step_ms' "$LOG_DIR/bench_train.log"; then
    echo
    echo "bench train (step3-mini, cuda):"
    sed -n '/step_ms/,$p' "$LOG_DIR/bench_train.log"
  fi
  [ "$HAVE_GPU" = 0 ] && echo "no GPU on this machine: nothing was measured"
} | tee "$LOG_DIR/gpu_check.txt"

[ "$FAILED" = 1 ] && exit 1
[ "$HAVE_GPU" = 0 ] && exit 2
exit 0
