#!/usr/bin/env bash
# The GPU part of the benchmarks, for a machine with CUDA (run from the repository root with the
# package importable): W6, the speed of training micro, the LoRA fine-tune of lora_micro.py, and (with
# MEDSAM2_REPO set) the preset medsam2 against MedSAM2's own script.
#     bash benchmarks/gpu.sh OUTPUT_FOLDER [LORA_STEPS]
set -u
out=${1:?output folder}; lora_steps=${2:-1500}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
# training speed: a full fine-tune of micro, bf16, 5-slice clips (the CPU figure for the same settings: 0.8 s per step)
python3 -m SegmentWithSAM2Lib.cli --debug train --synthetic 100 --synthetic-shapes blob,tube,twins --model micro \
    --mode full --steps 200 --clip-length 5 --lr 2e-4 --seed 1 --output /tmp/gpu-full --device cuda \
    --precision bf16 2>&1 | grep -v -e Warning -e 'training:' | tee "$out/train-full.log"
cp /tmp/gpu-full/train.log "$out/train-full-steps.log"
python3 benchmarks/experiments/lora_micro.py --steps "$lora_steps" --rank 16 --lr 1e-3 --device cuda --precision bf16 \
    --output /tmp/lora-shell --results /tmp/lora-shell/results --baseline none 2>&1 | grep -v -e Warning -e 'training:' | tee "$out/lora.log"
tar czf "$out/lora.tgz" -C /tmp/lora-shell adapter.json adapter.safetensors train.log results
python3 benchmarks/bench.py --workloads W6 --repeats 1 --output "$out" 2>&1 | grep -v Warning
# issue 21: --preset medsam2 against MedSAM2's own CUDA-only script, given a checkout of bowang-lab/MedSAM2
# (its requirements installed: pandas, scikit-image, matplotlib, Pillow) and lung2 in the sample cache
if [ -n "${MEDSAM2_REPO:-}" ]; then
    python3 benchmarks/medsam2_agreement.py --medsam2-repo "$MEDSAM2_REPO" 2>&1 | grep -v Warning | tee "$out/medsam2-agreement.log"
    cp benchmarks/results/medsam2-agreement.md "$out/"
fi
