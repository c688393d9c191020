#!/bin/sh
# Issue 5, images: MAESI or AMA (argument 1) on Fashion-MNIST one-class (all ten classes) and on the
# OOD protocol (Fashion-MNIST normal vs MNIST test images), one seed. Budget chosen to fit ~30 min per
# model on one core of this machine: the `quick` settings (n_critic 2, batch 256) with 2 epochs on at
# most 3,000 training images (~45 images/s per training epoch here). Resumable through the store.
set -x
export ADVAD_DATA=${ADVAD_DATA:-/work/shared/datasets}
CLI=${CLI:-.venv/bin/advad}
R=benchmarks/results
M=${1:?usage: run_mirrored_images.sh maesi|ama}
S=$R/mirrored_store_images
P="--param epochs=2 --param max_train_samples=3000"
$CLI bench --models $M --datasets fashion-mnist --protocol one-class --seeds 1 --budget quick $P --no-progress --out $S --json > $R/${M}_fashion-mnist_one-class.json
$CLI bench --models $M --datasets fashion-mnist --protocol ood --protocol-param against=mnist --seeds 1 --budget quick $P --no-progress --out $S --json > $R/${M}_fashion-mnist_ood-mnist.json
# (diagnostic, MAESI only) the OOD run at 10x the training steps: 10 epochs on 6,000 images (~25 min)
[ "$M" = maesi ] && $CLI bench --models maesi --datasets fashion-mnist --protocol ood --protocol-param against=mnist --seeds 1 --budget quick --param epochs=10 --param max_train_samples=6000 --no-progress --out $S --json > $R/maesi_fashion-mnist_ood-mnist_10x6000.json
# (diagnostic, AMA) the OOD run at 5x the steps, two threads (~6 min)
[ "$M" = ama ] && OMP_NUM_THREADS=2 $CLI bench --models ama --datasets fashion-mnist --protocol ood --protocol-param against=mnist --seeds 1 --budget quick --param epochs=5 --param max_train_samples=6000 --no-progress --out $S --json > $R/ama_fashion-mnist_ood-mnist_5x6000.json
