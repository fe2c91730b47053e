#!/usr/bin/env bash
# Runs the sweeps of examples/ci/github-actions.yml and examples/ci/kubernetes.yaml on this
# machine, with no network, docker or kubectl, and checks that each merged report equals one
# unsharded run of the same seeds.
#
# How the examples and this test stay in step: the commands are not copied here. Each file
# marks its shard script and its merge script with a line `# crashpoint-example: shard` or
# `# crashpoint-example: merge`; this test cuts those scripts out of the files and runs them
# as they are, with only what the engines provide set by hand: the matrix's
# `strategy.job-index`/`job-total` (SHARD, SHARDS) for GitHub Actions, JOB_COMPLETION_INDEX and
# the pod's environment (SHARDS, REPORTS) for Kubernetes, the checkout's target/release for
# the binary. SEEDS and SCENARIOS are set small (smoke, 0..60) instead of the examples'
# values. N is read from the files (the matrix's length, `completions`) and must be 3.
#
# Usage: examples/ci/test.sh   (builds the simulator with `cargo build --profile ci` first)
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=examples/ci
workflow="$examples/github-actions.yml"
manifest="$examples/kubernetes.yaml"

export SEEDS=0..60 SCENARIOS=smoke CI=1
unset CRASHPOINT_SEED JOB_COMPLETION_INDEX

cargo build --profile ci -p crashpoint-sim --quiet
binary="$PWD/target/ci/crashpoint"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
    echo "examples/ci/test.sh: $*" >&2
    exit 1
}

# extract FILE NAME: the script that follows `# crashpoint-example: NAME` in FILE, with the
# marker's indentation removed, up to the first line indented less than the marker.
extract() {
    awk -v marker="# crashpoint-example: $2" '
        !found {
            line = $0
            sub(/^ */, "", line)
            if (line == marker) {
                found = 1
                indent = length($0) - length(line)
            }
            next
        }
        /^[[:space:]]*$/ { print ""; next }
        {
            match($0, /^ */)
            if (RLENGTH < indent) exit
            print substr($0, indent + 1)
        }
        END { if (!found) exit 1 }
    ' "$1" || fail "no '# crashpoint-example: $2' script in $1"
}

# N from the files: the matrix's shards, the Indexed Job's completions and SHARDS.
matrix="$(sed -n 's/^ *shard: *\[\(.*\)\] *$/\1/p' "$workflow" | tr -d ' ')"
[ "$matrix" = "0,1,2" ] || fail "the workflow's matrix is [$matrix], the test expects [0,1,2]"
completions="$(sed -n 's/^ *completions: *\([0-9]*\) *$/\1/p' "$manifest")"
[ "$completions" = 3 ] || fail "the Indexed Job has completions: $completions, the test expects 3"
grep -A1 -- '- name: SHARDS' "$manifest" | grep -q 'value: "3"' ||
    fail "the manifest's SHARDS is not \"3\" in every container"
shards=3

echo "== the reference: one unsharded run of $SCENARIOS, seeds $SEEDS"
"$binary" run $SCENARIOS --seeds "$SEEDS" --json "$work/single.json" --quiet

# compare WHAT MERGED: the merged report must equal the unsharded run, seed for seed.
compare() {
    echo "== $1: the merge against the unsharded run"
    "$binary" merge "$2" --compare "$work/single.json" --quiet ||
        fail "$1: the merged report differs from one unsharded run"
}

echo "== GitHub Actions: $shards matrix jobs, each in its own checkout, then the merge job"
shard_script="$(extract "$workflow" shard)"
merge_script="$(extract "$workflow" merge)"
mkdir -p "$work/github/merge"
for shard in $(seq 0 $((shards - 1))); do
    job="$work/github/job-$shard"
    mkdir -p "$job/target/release"
    ln -s "$binary" "$job/target/release/crashpoint"
    (cd "$job" && SHARD="$shard" SHARDS="$shards" \
        bash --noprofile --norc -eo pipefail -c "$shard_script")
    # upload-artifact, then download-artifact with merge-multiple.
    cp "$job/shard-$shard.json" "$work/github/merge/"
done
mkdir -p "$work/github/merge/target/release"
ln -s "$binary" "$work/github/merge/target/release/crashpoint"
(cd "$work/github/merge" && bash --noprofile --norc -eo pipefail -c "$merge_script")
compare "GitHub Actions" "$work/github/merge/all.json"

echo "== Kubernetes: the Indexed Job's $shards pods on one shared volume, then the merge Job"
shard_script="$(extract "$manifest" shard)"
merge_script="$(extract "$manifest" merge)"
reports="$work/kubernetes/reports"
mkdir -p "$reports"
for index in $(seq 0 $((shards - 1))); do
    JOB_COMPLETION_INDEX="$index" SHARDS="$shards" REPORTS="$reports" \
        PATH="$(dirname "$binary"):$PATH" sh -c "$shard_script"
    [ -s "$reports/shard-$index.json" ] || fail "pod $index left no report"
done
SHARDS="$shards" REPORTS="$reports" PATH="$(dirname "$binary"):$PATH" sh -c "$merge_script"
compare "Kubernetes" "$reports/all.json"

echo "examples/ci: both sweeps, merged, equal one unsharded run"
