#!/bin/sh
# The ALAD benchmark runs of issue 3, one heavy job at a time (2 shared cores). Each `--out` folder
# keeps finished runs, so re-running this script resumes where it stopped.
set -x
export ADVAD_DATA=${ADVAD_DATA:-/work/shared/datasets}
CLI=".venv/bin/python benchmarks/advad_cli.py"
R=benchmarks/results
$CLI bench --models alad --datasets kdd99 --protocol topk --seeds 1 --budget quick --no-progress --out $R/alad_kdd99_quick
$CLI bench --models alad --datasets arrhythmia --protocol topk --seeds 5 --budget paper --no-progress --out $R/alad_topk_paper --json > $R/alad_topk_paper_arrhythmia.json
$CLI bench --models alad --datasets kdd99 --protocol topk --seeds 5 --budget quick --no-progress --out $R/alad_kdd99_quick --json > $R/alad_kdd99_quick.json
$CLI bench --models alad --datasets arrhythmia,thyroid,musk --protocol topk --seeds 5 --budget paper --no-progress --out $R/alad_topk_paper --json > $R/alad_topk_paper.json
