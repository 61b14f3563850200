#!/usr/bin/env bash
# Stop and resume on GPUs (after `source .gpu/env.sh` and bench/gpu_train.sh's build and data, e.g.
# `GPUS= bash bench/gpu_train.sh && bash bench/gpu_resume.sh`): the sa2va-1b recipe on
# GPUS (default 2) GPUs, once uninterrupted for STEPS steps and once stopped after step 4 (the STOP file: this
# machine's mpirun does not forward SIGUSR1) and resumed with --resume auto; prints both runs' per-step losses
# after the stop side by side.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
STEPS=${STEPS:-12}
GPUS=${GPUS:-2}
mkdir -p "$OUT"
RECIPE=(--config configs/sa2va_1b_vessel_lora.yaml --data /tmp/vt-synth --set model.tokenizer=configs/tiny/tokenizer.json
        --set data.max_tiles=4 --set data.workers=4 --set train.max_steps="$STEPS" --set train.log_interval=1
        --set train.val_interval=0 --set train.save_steps=1000 --set train.warmup_ratio=0.1)
LAUNCH=(mpirun -np "$GPUS" --bind-to none -x OMP_NUM_THREADS=4 -x LD_LIBRARY_PATH build-gpu/bin/vesseltune-train)
rm -rf /tmp/vt-resume-a /tmp/vt-resume-b
timeout 200 "${LAUNCH[@]}" "${RECIPE[@]}" --work-dir /tmp/vt-resume-a > "$OUT/resume_a.log" 2>&1
echo "uninterrupted: exit $?"
"${LAUNCH[@]}" "${RECIPE[@]}" --work-dir /tmp/vt-resume-b > "$OUT/resume_b1.log" 2>&1 &
JOB=$!
for _ in $(seq 300); do grep -q "iter: 4," /tmp/vt-resume-b/train.log 2>/dev/null && break; sleep 0.5; done
touch /tmp/vt-resume-b/STOP
wait "$JOB"
echo "stopped: exit $? ($(grep -o 'stop requested.*' /tmp/vt-resume-b/train.log))"
cat /tmp/vt-resume-b/run_status.json
STOP=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' /tmp/vt-resume-b/run_status.json | head -1)
timeout 200 "${LAUNCH[@]}" "${RECIPE[@]}" --work-dir /tmp/vt-resume-b --resume auto > "$OUT/resume_b2.log" 2>&1
echo "resumed: exit $? ($(grep -o 'resumed from.*' /tmp/vt-resume-b/train.log))"
echo "per-step total loss after the stop (uninterrupted | stopped + resumed):"
for log in /tmp/vt-resume-a/train.log /tmp/vt-resume-b/train.log; do
  grep -o "iter: [0-9]*, loss_mask: [^,]*, loss_dice: [^,]*, llm_loss: [^,]*, total: [^,]*" "$log" | awk -v s="$STOP" -F'[:,] *' '$2 > s' > "$log.losses"
done
paste -d'|' /tmp/vt-resume-a/train.log.losses /tmp/vt-resume-b/train.log.losses
