#!/usr/bin/env bash
# Runs shellcheck over every shell script of the repository, no warning allowed:
# each file ending in .sh, each file whose first line is a sh/bash shebang,
# each file with a `# shellcheck shell=` directive (sourced libraries, the
# kernel harness's busybox guest), wherever it lives. Files are found, not
# listed, so a new script is checked without anyone adding it here.
# Installs shellcheck (Debian) when absent.
# Ends with "shell: N passed, N failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

need shellcheck:shellcheck || die "shellcheck could not be installed"

# The repository's files, without build output, dependencies or git's own.
scripts=()
while IFS= read -r -d '' file; do
  case $file in
    *.sh) scripts+=("$file") ;;
    *)
      first=$(head -n 1 "$file" 2>/dev/null | tr -d '\0')
      if [[ $first =~ ^\#!.*(/|[[:space:]])(ba|da)?sh([[:space:]]|$) ]] ||
        grep -qsm1 '^# shellcheck shell=' "$file"; then
        scripts+=("$file")
      fi
      ;;
  esac
done < <(find . \( -name .git -o -name target -o -name node_modules \) -prune -o -type f -print0 | sort -z)

# The search itself must see the scripts it is meant for.
for expected in ./scripts/checks/shell.sh ./scripts/lib/common.sh ./scripts/gcp/up \
  ./scripts/gcp/tests/fake-gcloud ./scripts/kernel/guest/init ./sink/healthcheck.sh ./.ci/run; do
  found=
  for file in "${scripts[@]}"; do [ "$file" = "$expected" ] && found=1 && break; done
  if [ -n "$found" ]; then pass "found $expected"; else fail "found $expected" "not among: ${scripts[*]}"; fi
done

log "shellcheck on ${#scripts[@]} scripts"
for file in "${scripts[@]}"; do
  check "shellcheck ${file#./}" shellcheck -x "$file"
done
finish
