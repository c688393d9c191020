#!/bin/sh
# The ARN benchmark runs of issue 6 (v3: epoch chosen by labelled validation BCE, the authors' rule),
# one heavy job at a time, `quick` budget, 5 seeds. The `--out` store keeps finished runs, so re-running
# this script resumes; each JSON is rewritten from the store.
set -x
export ADVAD_DATA=${ADVAD_DATA:-/work/shared/datasets}
CLI=${CLI:-.venv/bin/advad}
R=benchmarks/results
S=$R/arn_store_v3
# (1) Table II targets: kdd99-rev (AUROC >= 0.95) and bank (>= 0.70), with the iforest and ae baselines
$CLI bench --models arn,iforest,ae --datasets kdd99-rev,bank --protocol auc --seeds 5 --no-progress --out $S --json > $R/arn_v3_auc_kdd99-rev_bank.json
# (2) Table III: contamination p = 1 %, 5 % on kdd99-rev
for p in 0.01 0.05; do
  $CLI bench --models arn,iforest,ae --datasets kdd99-rev --protocol contamination --protocol-param p=$p --seeds 5 --no-progress --out $S --json > $R/arn_v3_contamination_p$p.json
done
# (2b) Table III's model is ARN^N: the same with numeric heads
for p in 0.01 0.05; do
  $CLI bench --models arn --datasets kdd99-rev --protocol contamination --protocol-param p=$p --param variant=numeric --seeds 5 --no-progress --out $S --json > $R/arn_v3_contamination_numeric_p$p.json
done
# (3) Table IV: 1 %, 3 % labelled anomalies on kdd99-rev and bank (iforest and ae cannot use labels)
for p in 0.01 0.03; do
  $CLI bench --models arn --datasets kdd99-rev,bank --protocol weak-supervision --protocol-param p=$p --seeds 5 --no-progress --out $S --json > $R/arn_v3_weak_p$p.json
done
# (1b) ARN^N (numeric heads; the paper's best column: kdd99-rev .99, bank .76)
$CLI bench --models arn --datasets kdd99-rev,bank --protocol auc --param variant=numeric --seeds 5 --no-progress --out $S --json > $R/arn_v3_auc_numeric_kdd99-rev_bank.json
# (4) the rest of Table II
$CLI bench --models arn,iforest,ae --datasets kdd99,kdd99-inv,nsl-kdd,covertype --protocol auc --seeds 5 --no-progress --out $S --json > $R/arn_v3_auc_others.json
