#!/usr/bin/env bash
# Issue 17's GPU items in one run of a few minutes, for a session that is lent a GPU for a short
# while (15 minutes of device time in all, machine start included):
#
#   1. the VAE step time, the layer against hand-written JAX and PyTorch, alone on the GPU
#      (benchmarks.vae_step_time: K = 1, 5, 50, and K = 50 with DReG);
#   2. then, side by side on the GPU:
#      - IWAE k=50 with DReG on the IWAE schedule's first 6 stages (benchmarks.likelihood_table),
#        checkpointed every epoch, until the budget runs out: a later run resumes the checkpoint
#        on any device (the checkpoint records the run, not the device);
#      - the MNIST GAN that keeps its modes (benchmarks.implicit_models mnist, R1 10, 40000 steps);
#      - ProdLDA with batch normalization and dropout, AP and Reuters, K = 20 and 50
#        (benchmarks.topic_models, NumPyro).
#   3. everything the runs wrote, in one archive.
#
#   OUT=/path BUDGET=540 bash benchmarks/gpu_checks.sh
#
# BUDGET (seconds) bounds the whole script: each piece runs under `timeout`, and the IWAE run is
# interrupted (its last epoch's checkpoint kept) early enough to write the archive. DEVICE=cpu and
# SMALL=1 make a dry run of a minute or two on a CPU, to check the script before device time is spent.
# The data: PPL_DATA_DIR, else the shared folder beside the repository (as the Makefile). No GPU, or a
# data file missing, is one line before anything runs; Ctrl-C interrupts every run as its time limit
# would (the IWAE checkpoint kept: run the script again to resume it) and writes no archive.
set -u
cd "$(dirname "$0")/.."  # the repository's root, where `python3 -m benchmarks...` finds the package
OUT=${OUT:-runs/gpu_checks}
BUDGET=${BUDGET:-540}
DEVICE=${DEVICE:-cuda}
WORK=runs/gpu_checks_work
export PPL_DATA_DIR=${PPL_DATA_DIR:-$PWD/../shared/data}
python3 - "$DEVICE" <<'PY' || exit 2
import sys
from inference.backends import check_device
from ppl_models.data import mnist, text
from ppl_models.data.paths import resolve
from ppl_models.errors import PPLError
try:
    check_device(["numpyro", "pyro"], sys.argv[1])
    for folder, sums in (("mnist", mnist.SUMS), ("text", text.SUMS)):
        for name in sums:
            resolve(f"{folder}/{name}")
except PPLError as e:
    sys.exit(f"gpu_checks: error: {e}")
PY
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # three JAX processes share the GPU
if [ "${SMALL:-0}" = 1 ]; then
    STEP=(--rounds 1 --steps 20); STAGES=1; NUM_TEST=(--num-test 200 --num-samples 50)
    GAN_STEPS=200; PRODLDA=(--corpus ap --topics 20 --prodlda-steps 50)
else
    STEP=(--rounds 3 --steps 300); STAGES=6; NUM_TEST=()
    GAN_STEPS=40000; PRODLDA=(--corpus ap reuters --topics 20 50)
fi
left() { echo $((BUDGET - SECONDS)); }
RUNS=()
bounded() {  # bounded SECONDS CMD...: CMD in the background, interrupted (Ctrl-C's signal) after SECONDS,
    local s=$1; shift  # killed 15 s later; `wait $!` for its status (124: timed out, or no time left)
    if [ "$s" -gt 5 ]; then
        timeout -s INT -k 15 "$s" "$@" &
    else
        echo "skipped (no time left): $*"; (exit 124) &
    fi
    RUNS+=($!)
}
# Ctrl-C reaches this script only, as each `timeout` leads a process group of its own: pass it on to them
interrupted() {
    echo "gpu_checks: interrupted: the runs stop as at their time limits; logs in $OUT, runs in $WORK"
    kill -INT "${RUNS[@]}" 2> /dev/null
    wait "${RUNS[@]}"  # these only: a bare `wait` would wait for tee, which waits for this script to end
    exit 130
}
trap interrupted INT TERM
touch "$WORK/started"
# the log, on the terminal too; tee -i outlives Ctrl-C to print the script's last lines
exec > >(tee -i "$OUT/log.txt") 2>&1
date -u
! command -v nvidia-smi > /dev/null || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import sys, jax, torch, numpyro, pyro; print(sys.version.split()[0], "jax", jax.__version__,
jax.devices(), "torch", torch.__version__, torch.cuda.is_available(), "numpyro", numpyro.__version__, "pyro",
pyro.__version__)'

echo "== 1. step time ($(left) s left)"
bounded $(( $(left) / 4 )) python3 -m benchmarks.vae_step_time --device "$DEVICE" "${STEP[@]}" --k 1,5,50
wait $!
bounded $(( $(left) / 5 )) python3 -m benchmarks.vae_step_time --device "$DEVICE" "${STEP[@]}" --k 50 --dreg
wait $!

echo "== 2. IWAE k=50 DReG ($STAGES stages), the GAN and ProdLDA, side by side ($(left) s left)"
bounded $(( $(left) - 40 )) python3 -m benchmarks.likelihood_table --rows iwae_k50_dreg --stages "$STAGES" \
    --device "$DEVICE" "${NUM_TEST[@]}" --out "$WORK/k50" --csv "$WORK/k50/rows.csv" --progress \
    > "$OUT/k50.log" 2>&1
k50=$!
bounded $(( $(left) - 60 )) python3 -m benchmarks.implicit_models mnist --device "$DEVICE" \
    --mnist-steps "$GAN_STEPS" --seeds 0 --fits "adversarial non_saturating, r1 10, average 0.999" \
    > "$OUT/gan.log" 2>&1
gan=$!
bounded $(( $(left) - 60 )) python3 -m benchmarks.topic_models --device "$DEVICE" "${PRODLDA[@]}" --seeds 0 \
    --methods prodlda --backend numpyro --out "$WORK/topic_models_$DEVICE.csv" > "$OUT/prodlda.log" 2>&1
prodlda=$!
wait $gan; echo "GAN: exit $?"
wait $prodlda; echo "ProdLDA: exit $?"
wait $k50; echo "IWAE k=50: exit $? ($(left) s left)"
python3 -m benchmarks.likelihood_table --rows iwae_k50_dreg --stages "$STAGES" "${NUM_TEST[@]}" \
    --out "$WORK/k50" --csv "$WORK/k50/rows.csv" --status

echo "== 3. the archive"
# the IWAE checkpoint on its own (about 14 MB after 6 stages: the device tool brings back files of up
# to 16 MiB); the runs' other files, and what the GAN appended or drew (implicit_models.csv, a grid)
cp "$WORK"/k50/*.ckpt "$OUT/"
find "$WORK" benchmarks/implicit_models.csv docs/figures -type f -newer "$WORK/started" ! -name '*.lock' \
    ! -name '*.ckpt' -size -8M -print0 | tar czf "$OUT/results.tgz" --null -T -
tar tzvf "$OUT/results.tgz"
