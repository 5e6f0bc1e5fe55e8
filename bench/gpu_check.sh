#!/usr/bin/env bash
# The GPU checks and benchmarks of docs/benchmarks.md, prepared to run in one short lease of one
# H100/H200 (about 5 min for "eager", 5 for "compile"):
#
#   bash bench/gpu_check.sh OUT_DIR [eager|compile|all]      # default: all
#
# eager:   the CUDA tests (tests/test_cuda.py, the CUDA test of tests/test_slide.py), loader
#          images/s at 8/12/15 workers, PSPNet-50 713x713 training on random tensors and fed by
#          the real loader (15 workers), slide+flip inference at 1024x2048 with and without
#          BatchNorm folding, in memory and from PNGs decoded inline or by 3 workers (the
#          stages' loop with `--threads 4`); whole-image inference with and without
#          channels_last.
# compile: the same training and inference under torch.compile (compilation in the warm-up).
# Every step has its own time limit and writes OUT_DIR/<step>.jsonl (its JSON lines) and
# <step>.log; OUT_DIR/summary.txt lists each step's exit status and seconds. Needs torch,
# torchvision, OpenCV, numpy and pytest; no snakemake, no network, no installed package.
set -u
out=${1:?usage: bash bench/gpu_check.sh OUT_DIR [eager|compile|all]}
part=${2:-all}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
data=${GPU_CHECK_DATA:-/tmp/dars-gpu-check-data}  # generated once, reused by both parts

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    timeout "$limit" "$@" >"$out/$name.jsonl" 2>"$out/$name.log"
    rc=$?
    local note=""
    [ "$rc" = 124 ] && note=" (time limit)"
    echo "$name rc=$rc $((SECONDS - start))s$note" | tee -a "$out/summary.txt"
}

model=(--model pspnet50 --crop 713 --batch 8 --channels-last --steps 10 --warmup 3)
slide=(--model pspnet50 --modes slide --height 1024 --width 2048 --window 713 --batch-windows 8 --images 10)
images=(--images 16 --keep "$data")
workers=(8 12 15)
if [ -n "${GPU_CHECK_SMOKE:-}" ]; then  # the same steps at toy sizes: checks this script on a CPU
    model=(--model lite32 --crop 96 --batch 4 --steps 2 --warmup 1)
    slide=(--model lite32 --modes slide --height 128 --width 256 --window 96 --batch-windows 8 --images 2)
    images=(--images 4 --size 256 512 --crop 96 --keep "$data-smoke")
    workers=(0 1 2)
fi

if [ "$part" = eager ] || [ "$part" = all ]; then
    step env 30 "$python" -c "import json, os, torch, torchvision, cv2; print(json.dumps({'torch': torch.__version__, \
'torchvision': torchvision.__version__, 'cv2': cv2.__version__, 'cuda': torch.version.cuda, \
'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, 'cpus': os.cpu_count()}))"
    step tests 150 "$python" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_slide.py -k cuda
    step loader 90 "$python" bench/loader_bench.py --workers "${workers[@]}" --batches 8 "${images[@]}"
    step train 120 "$python" bench/train_bench.py "${model[@]}" --workers "${workers[-1]}" "${images[@]}"
    step infer 120 "$python" bench/infer_bench.py "${slide[@]}" --fold on off --forward-only \
        --disk-workers 0 3 --keep "$data-infer"
    step infer_whole 60 "$python" bench/infer_bench.py "${slide[@]}" --modes whole --channels-last on off
fi
if [ "$part" = compile ] || [ "$part" = all ]; then
    step train_compile 200 "$python" bench/train_bench.py "${model[@]}" --compile --workers "${workers[-1]}" "${images[@]}"
    step infer_compile 150 "$python" bench/infer_bench.py "${slide[@]}" --fold on --compile on --warmup 3
fi
