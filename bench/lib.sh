# Shell helpers shared by bench/run-all.sh and bench/compare.sh (sourced, not run).

# wait_addr FILE PREFIX: prints the address after PREFIX on the first line of FILE that
# starts with it, waiting up to 20 s for a process to print it; fails otherwise.
wait_addr() {
  for _ in $(seq 400); do
    if grep -q "^$2" "$1" 2>/dev/null; then sed -n "s/^$2//p" "$1" | head -1; return; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2; exit 1
}
