#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder in common/ (fuzz/fuzz_targets/*.rs).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default: $FUZZ_SECONDS, else 60)
#   TARGET   targets to run (default: all of them)
#
# Runs on the stable toolchain: cargo-fuzz is used with `--sanitizer none` (the only flag
# that needs nightly is -Zsanitizer; the coverage instrumentation, -Cpasses=sancov-module
# and -Cllvm-args=-sanitizer-coverage-*, is stable). `-O -a` builds with optimisations plus
# debug assertions and overflow checks, so arithmetic overflow is a crash too.
#
# Each target starts from its committed corpus in fuzz/corpus/<target>/ (read only); new
# inputs go to fuzz/target/fuzz-corpus/<target>/ (ignored). With FUZZ_UPDATE_CORPUS=1 new
# inputs go into the committed corpus instead, which is then minimised with `cargo fuzz
# cmin`. Inputs kept in fuzz/regressions/<target>/ are replayed first.
#
# Exits non-zero if any target crashes, fails an invariant, times out or runs out of
# memory; the input is saved under fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-60}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    seconds="$1"
    shift
fi
all_targets=(json_stream login line link client_frame)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

# Largest input per target: enough to cross each decoder's limit (4096-byte frames for
# json_stream and link, lines up to 1020 bytes, MAX_LOGIN_BYTES = 136).
max_len() {
    case "$1" in
        json_stream) echo 9000 ;;
        link) echo 9000 ;;
        line) echo 2200 ;;
        login) echo 512 ;;
        client_frame) echo 4096 ;;
        *) echo "unknown target $1" >&2; return 1 ;;
    esac
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

build_flags=(--sanitizer none --release --debug-assertions)
echo "== building fuzz targets ($(cargo fuzz --version), $(rustc --version))"
cargo fuzz build "${build_flags[@]}"

mkdir -p target/fuzz-logs
failed=()
summary=()
for t in "${targets[@]}"; do
    len="$(max_len "$t")"
    mkdir -p "corpus/$t" "artifacts/$t"
    flags=(-max_len="$len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

    if compgen -G "regressions/$t/*" >/dev/null; then
        echo "== $t: replaying regressions/$t"
        if ! cargo fuzz run "${build_flags[@]}" "$t" "regressions/$t" -- -runs=0 "${flags[@]}" \
            >"target/fuzz-logs/$t.regressions.log" 2>&1; then
            echo "!! $t: a regression input fails (target/fuzz-logs/$t.regressions.log)"
            failed+=("$t(regressions)")
        fi
    fi

    if [[ "${FUZZ_UPDATE_CORPUS:-0}" == 1 ]]; then
        dirs=("corpus/$t")
    else
        rm -rf "target/fuzz-corpus/$t"
        mkdir -p "target/fuzz-corpus/$t"
        dirs=("target/fuzz-corpus/$t" "corpus/$t")
    fi
    log="target/fuzz-logs/$t.log"
    echo "== $t: ${seconds}s, -max_len=$len (log: fuzz/$log)"
    rc=0
    cargo fuzz run "${build_flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" "${flags[@]}" >"$log" 2>&1 || rc=$?
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
    echo "   $last"
    summary+=("$t: rc=$rc execs=${execs:-?} ${last#*cov:}")
    if [[ $rc -ne 0 ]]; then
        echo "!! $t failed (rc=$rc):"
        grep -E -A12 "panicked|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -n 40 || true
        failed+=("$t")
    fi

    if [[ "${FUZZ_UPDATE_CORPUS:-0}" == 1 && $rc -eq 0 ]]; then
        echo "== $t: minimising corpus/$t"
        # Edge coverage only (no hit counts) and a greedy set cover keep the committed
        # corpus to a few hundred small files per target.
        cargo fuzz cmin "${build_flags[@]}" "$t" "corpus/$t" -- -max_len="$len" -timeout=10 \
            -use_counters=0 -set_cover_merge=1 >"target/fuzz-logs/$t.cmin.log" 2>&1
        echo "   $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
    fi
done

echo "== summary (${seconds}s per target)"
printf '   %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all targets passed"
