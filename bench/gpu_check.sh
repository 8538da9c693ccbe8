#!/usr/bin/env bash
# Every check that needs a GPU, in one call (time on a lent GPU machine is short). From the project
# root of the GPU machine, after ../shared/device/prepare.sh here:
#   source .device-carry/env.sh; bash bench/gpu_check.sh        # writes into $OUT (or /tmp/gpu-out)
# 1. tests/test_cuda.py and tests/test_device.py's real-CUDA cases: inference on cuda equals the CPU
#    (the served model too); bf16 training.
# 2. The CoNLL-2003 recipe with --preset gpu for at most 2 minutes of training (GloVe cut to fit).
# 3. bench/ner_speed.py on the GPU (training tokens/s, predict and predict_entities sentences/s).
# 4. bench/pipeline_speed.py on the GPU: raw text to entity dicts with span scores, the CRF decoded on the
#    GPU (torch-fp32, torch-bf16) and, for comparison, one batch ahead (torch-fp32-overlap: batch i + 1
#    queued on the GPU before batch i is read) and decoded on the host in numpy (torch-fp32-host-crf).
# 5. bench/pipeline_host.py: what the pipeline costs on this machine's CPU besides the network and the CRF.
# Worst case, every step at its timeout: 585 s, under the device tool's 600 s per call.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
start=$(date +%s)
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_device.py 2>&1 | tail -15 | tee "$OUT/test_cuda.txt"
echo "tests done at +$(( $(date +%s) - start )) s"
timeout 230 python3 recipes/ner_conll2003.py --preset gpu --embeddings "$GLOVE_CUT" --max-minutes 2 \
  --output-dir /tmp/gpu-run > "$OUT/recipe.log" 2>&1
grep -v "%|" "$OUT/recipe.log" | grep -E "trainer|runs|^\{|Error|error" | tail -80 > "$OUT/recipe.txt"
cp /tmp/gpu-run/results.json /tmp/gpu-run/metrics.jsonl /tmp/gpu-run/learning_curves.png "$OUT/" 2>/dev/null
tail -3 "$OUT/recipe.txt"
echo "recipe done at +$(( $(date +%s) - start )) s"
timeout 80 python3 bench/ner_speed.py --device cuda --preset gpu --embeddings "$GLOVE_CUT" --warmup 20 --steps 200 \
  2>"$OUT/ner_speed.err" | tee "$OUT/ner_speed.json"
echo "ner_speed done at +$(( $(date +%s) - start )) s"
if [ -f /tmp/gpu-run/config.json ]; then
  timeout 80 python3 bench/pipeline_speed.py --model /tmp/gpu-run --device cuda \
    --variants torch-fp32,torch-bf16,torch-fp32-host-crf --batch-size 1024 2>"$OUT/pipeline_speed.err" \
    | tee "$OUT/pipeline_speed.json"
  # apart, so that a failure of the newer path costs only its own figure; torch-fp32 again, side by side
  timeout 60 python3 bench/pipeline_speed.py --model /tmp/gpu-run --device cuda \
    --variants torch-fp32,torch-fp32-overlap --batch-size 1024 2>"$OUT/pipeline_overlap.err" \
    | tee "$OUT/pipeline_overlap.json"
fi
if [ -f /tmp/gpu-run/config.json ]; then  # the Python around the network, on this machine's CPU
  timeout 45 python3 bench/pipeline_host.py --model /tmp/gpu-run --batch-size 1024 2>"$OUT/pipeline_host.err" \
    | tee "$OUT/pipeline_host.json"
fi
echo "all done at +$(( $(date +%s) - start )) s"
