#!/bin/sh
# The ALAD benchmark runs of issue 3, one heavy job at a time (2 shared cores), in the order.
# Each `--out` folder keeps finished runs (results.sqlite), so re-running this script resumes where it
# stopped; the JSON files are rewritten from the store at the end of each command.
set -x
export ADVAD_DATA=${ADVAD_DATA:-/work/shared/datasets}
CLI=".venv/bin/advad"
R=benchmarks/results
# (1) topk, paper budget: Arrhythmia (target mean F1 >= 0.48), Thyroid, Musk
$CLI bench --models alad --datasets arrhythmia,thyroid,musk --protocol topk --seeds 5 --budget paper --no-progress --out $R/alad_store_paper --json > $R/alad_topk_paper.json
# (2) KDD99, quick budget (target mean F1 >= 0.93)
$CLI bench --models alad --datasets kdd99 --protocol topk --seeds 5 --budget quick --no-progress --out $R/alad_store_kdd99_quick --json > $R/alad_kdd99_quick.json
# (3) Arrhythmia ablation: four scores from each fit, D_zz and spectral-norm switches (5 seeds each)
for v in "use_dzz=false" "use_dzz=true" "use_dzz=false spectral_norm=false" "use_dzz=true spectral_norm=false"; do
  tag=$(echo "$v" | tr ' =' '_-')
  args=""; for p in $v; do args="$args --param $p"; done
  [ -s $R/alad_ablation_arrhythmia_$tag.json ] || \
    .venv/bin/python benchmarks/alad_variants.py arrhythmia --seeds 5 --budget paper $args > $R/alad_ablation_arrhythmia_$tag.json
done
# (4) Fashion-MNIST one-class, all ten classes, one seed (mean AUROC > 0.5, no constant class)
$CLI bench --models alad --datasets fashion-mnist --protocol one-class --seeds 1 --budget quick --no-progress --out $R/alad_store_fashion-mnist_quick --json > $R/alad_fashion-mnist_one-class_quick.json
