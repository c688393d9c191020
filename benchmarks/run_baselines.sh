#!/bin/sh
# Issue 7 benchmark runs, `quick` budget, resumable through the stores. Argument: kdd99 | images | all.
#   kdd99:  the topk row of the seed papers' baselines on KDD99, 5 seeds (Arrhythmia and Thyroid are in
#           baselines_topk_quick_arrhythmia_thyroid.json, same store)
#   images: Fashion-MNIST one-class, all ten classes, one seed, for deepsvdd, dcae, ganomaly, anogan
set -x
export ADVAD_DATA=${ADVAD_DATA:-/work/shared/datasets}
CLI=${CLI:-.venv/bin/advad}
R=benchmarks/results
case ${1:-all} in kdd99|all)
  $CLI bench --models dagmm,dsebm-e,dsebm-r,deepsvdd,anogan --datasets kdd99 --protocol topk --seeds 5 --budget quick --no-progress --out $R/baselines_store_topk_quick --json > $R/baselines_topk_quick_kdd99.json
esac
case ${1:-all} in images|all)
  for m in deepsvdd dcae ganomaly anogan; do
    $CLI bench --models $m --datasets fashion-mnist --protocol one-class --seeds 1 --budget quick --no-progress --out $R/baselines_store_fashion-mnist_quick --json > $R/${m}_fashion-mnist_one-class_quick.json
  done
esac
