#!/usr/bin/env bash
# Measures the handler of an earlier commit ("before") and of the working tree ("after") with the same harnesses,
# one after the other in one run, each as a ratio against Netty's own close in the same JVM.
#
#   benchmarks/before-after.sh <commit> [out-dir]
#
# "after" is benchmarks/target/benchmarks.jar, built from the working tree. "before" is the same jar with the
# library's classes (package io.github.gracefultls, not its subpackages) replaced by those of <commit>: the same
# harness code drives both handlers. ConnectionCost reads the library's internals by name, so its "before" runs the
# jar of <commit> as it was.
set -euo pipefail

base="${1:?usage: benchmarks/before-after.sh <commit> [out-dir]}"
out="${2:-target/before-after}"
cd "$(dirname "$0")/.."
root="$PWD"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "== building after (working tree) and before ($base)"
./mvnw -B -q -pl benchmarks -am package -DskipTests
cp benchmarks/target/benchmarks.jar "$work/after.jar"
git worktree add -q --detach "$work/base" "$base"
(cd "$work/base" && ./mvnw -B -q -pl benchmarks -am package -DskipTests)
cp "$work/base/benchmarks/target/benchmarks.jar" "$work/before-own.jar"

mkdir -p "$work/hybrid" "$work/old"
(cd "$work/hybrid" && unzip -q "$work/after.jar" && rm -f io/github/gracefultls/*.class)
(cd "$work/old" && unzip -q "$work/before-own.jar" 'io/github/gracefultls/*.class')
cp "$work/old/io/github/gracefultls/"*.class "$work/hybrid/io/github/gracefultls/"
(cd "$work/hybrid" && zip -q -r "$work/before.jar" .)

run() { # name, java arguments...
  local name="$1"
  shift
  echo "== $name"
  java "$@" 2>&1 | tee "$out/$name.txt"
}

# Each harness runs on both handlers in turn, so that the machine's drift over the run touches both alike.
for side in before after; do
  run "close-latency-$side" -cp "$work/$side.jar" io.github.gracefultls.benchmarks.CloseLatency
done
for side in before after; do
  run "closure-at-scale-$side" -Xms2g -Xmx2g -cp "$work/$side.jar" io.github.gracefultls.benchmarks.ClosureAtScale
done
for side in before after; do
  run "data-path-$side" -Dio.netty.leakDetection.level=disabled -cp "$work/$side.jar" \
      io.github.gracefultls.benchmarks.DataPathPaired --sizes 64 --seconds 20
done
for side in before after; do
  run "closure-alloc-$side" -jar "$work/$side.jar" ClosureBenchmark -prof gc
done
run "connection-cost-before" -Xms2g -Xmx2g -cp "$work/before-own.jar" io.github.gracefultls.benchmarks.ConnectionCost
run "connection-cost-after" -Xms2g -Xmx2g -cp "$work/after.jar" io.github.gracefultls.benchmarks.ConnectionCost
echo "== results in $out"
