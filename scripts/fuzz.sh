#!/usr/bin/env bash
# Coverage-guided fuzzing of the state machine's apply (store/fuzz): sequences of arbitrary
# commands, decoded structurally from raw bytes, applied to fresh and pre-seeded machines; any
# panic or broken invariant is a finding. Runs on the stable toolchain (cargo-fuzz, -s none),
# without RocksDB. New inputs go to a scratch directory; the corpus in the repository is read.
#
#   scripts/fuzz.sh                 # 60 s from the committed corpus
#   scripts/fuzz.sh 600             # ten minutes
#   scripts/fuzz.sh --report        # what the committed corpus reaches, per command
#   scripts/fuzz.sh --merge 600     # fuzz, then minimize the findings into the committed corpus
#   scripts/fuzz.sh --revert-demo   # the layout's GA capacity bound reverted, in a scratch
#                                   # worktree: how long until the fuzzer finds the overflow
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export CARGO_TARGET_DIR="${TICKETD_FUZZ_TARGET_DIR:-/var/cache/ticketd/target-fuzz}"
CORPUS="$ROOT/store/fuzz/corpus/apply"
# libFuzzer flags: whole inputs at once (the harness decodes up to 48 entries), 4 KiB at most.
FLAGS=(-len_control=0 -max_len=4096 -print_final_stats=1)

ensure_cargo_fuzz() {
  ensure_build_deps
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz >/dev/null || die "cargo install cargo-fuzz failed"
  fi
}

# fuzz_in DIR SECONDS: runs the fuzzer of the store crate in DIR; new inputs and crashes go to a
# scratch directory whose path is printed; exits non-zero on a finding.
fuzz_in() {
  local dir="$1" seconds="$2" work
  work="$(mktemp -d /tmp/ticketd-fuzz.XXXXXX)"
  mkdir -p "$work/new" "$work/artifacts"
  log "fuzzing apply for ${seconds}s (new inputs and crashes in $work)"
  if (cd "$dir/store" && cargo fuzz run -s none apply "$work/new" "$CORPUS" -- \
    "${FLAGS[@]}" -max_total_time="$seconds" -artifact_prefix="$work/artifacts/"); then
    echo "$work"
    return 0
  fi
  local found
  found="$(ls "$work"/artifacts/crash-* "$work"/artifacts/oom-* "$work"/artifacts/timeout-* 2>/dev/null | head -n 1)"
  [ -n "$found" ] || die "the fuzzer did not run (see above)"
  log "FINDING: $found; reproduce with: (cd store && cargo fuzz run -s none apply $found)"
  return 1
}

case "${1:-}" in
  --report)
    log "replaying the corpus ($(ls "$CORPUS" | wc -l) inputs)"
    cargo run --quiet --release --no-default-features \
      --manifest-path store/fuzz/Cargo.toml --bin corpus-report -- "$CORPUS"
    ;;
  --merge)
    ensure_cargo_fuzz
    work="$(fuzz_in "$ROOT" "${2:-600}" | tail -n 1)"
    log "minimizing into $CORPUS"
    find "$work/new" -type f -exec cp -t "$CORPUS" {} +
    (cd store && cargo fuzz cmin -s none apply "$CORPUS" -- "${FLAGS[@]}")
    ;;
  --revert-demo)
    ensure_cargo_fuzz
    scratch="$(mktemp -d /tmp/ticketd-revert.XXXXXX)"
    git worktree add --detach "$scratch" HEAD >/dev/null
    trap 'git worktree remove --force "$scratch"' EXIT
    git -C "$scratch" apply "$ROOT/store/fuzz/demo/ga-capacity-unbounded.patch" \
      || die "the demo patch no longer applies"
    log "GA capacity bound reverted in $scratch; fuzzing for up to 600 s"
    started=$(date +%s)
    if fuzz_in "$scratch" 600 >/dev/null; then
      die "no finding within 600 s"
    fi
    log "found after $(( $(date +%s) - started )) s (build included)"
    ;;
  *)
    ensure_cargo_fuzz
    fuzz_in "$ROOT" "${1:-60}" >/dev/null
    ;;
esac
