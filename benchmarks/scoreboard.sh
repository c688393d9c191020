#!/bin/sh
# The committed scoreboard (docs/scoreboard/, linked from the README): every results store of this
# machine's benchmark runs plus the `--json` outputs of the runs made without a store, merged into one
# Markdown + HTML report beside the papers' numbers. Left out: exploratory runs (alad_explore_*), runs
# superseded by a later version (arn_* before v3; AMA's ama_topk_paper.json, ama_kdd99_quick.json and
# ama_ablation_* ran with lambda_neg=5, before the default became 0.5; maesi_kdd99_quick.json ran with
# z-scores, before KDD99 became min-max), ablation files whose runs carry
# no variant label (*_ablation_*: they are tabulated in docs/models/), and JSON copies of runs already
# in a store.
set -x
R=benchmarks/results
rm -rf docs/scoreboard/report_files  # plots of runs since relabelled or left out would linger
${CLI:-.venv/bin/advad} report $(ls -d $R/*/results.sqlite | xargs -n1 dirname) \
  $R/maesi_topk_paper.json \
  $R/rcgan_topk_paper_musk.json $R/iforest_topk_paper-check.json \
  --out docs/scoreboard
# the README's screenshot of the HTML page (Debian's chromium, headless)
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$(mktemp -d)" \
  --screenshot=docs/img/scoreboard.png --window-size=1400,1800 "file://$(pwd)/docs/scoreboard/report.html"
