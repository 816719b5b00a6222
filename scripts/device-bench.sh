#!/usr/bin/env bash
# Runs on a bare GPU machine (the device tool; see README "Real GPU"), from the repo root, after
# `node scripts/device-pack.mjs` here and with `.dev` carried. Unpacks Node, Dawn and the Vulkan
# loader, points the loader at the NVIDIA driver, then: adapter facts → selftest → a PEFT smoke
# run → `whittle profile` (a training step, and decode in f32 and q4) → `whittle bench` with
# PyTorch+PEFT on CUDA as the peer. Each phase has its own time limit; logs and JSON go to $OUT
# (or ./device-out). About 4 minutes on an H100 (run 3: 247 s). Usage: bash scripts/device-bench.sh [phases…]
# phases: info selftest peft profile bench (default: all, in that order)
set -u
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
T0=$(date +%s)
for f in .dev/gl/*.deb; do dpkg -x "$f" / ; done
ldconfig
if [ ! -x /tmp/wnode ]; then xz -dc .dev/node.xz > /tmp/wnode && chmod +x /tmp/wnode; fi
D=.dev/node_modules/webgpu/dist/linux-x64
[ -f $D/dawn.node ] || xz -dc $D/dawn.node.xz > $D/dawn.node
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=/tmp PYTHONUNBUFFERED=1 WHITTLE_AUTOTUNE_FILE=$OUT/autotune.json
mkdir -p ../shared/models && cp -r .dev/models/* ../shared/models/ 2>/dev/null
W="/tmp/wnode .dev/bin/whittle.mjs"
phase() { echo "=== $1 ($(( $(date +%s) - T0 )) s)"; }
PHASES=${*:-info selftest peft profile bench}
for p in $PHASES; do
  case $p in
  info)
    phase info
    { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d; echo "VK_DRIVER_FILES=$VK_DRIVER_FILES"; python3 -c 'import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)'; } 2>&1 | tee "$OUT/info.txt"
    /tmp/wnode -e "import('./.dev/node_modules/webgpu/index.js').then(async ({create,globals})=>{Object.assign(globalThis,globals);const g=create([]);const a=await g.requestAdapter({powerPreference:'high-performance'});const i=a.info;console.log(JSON.stringify({vendor:i.vendor,architecture:i.architecture,device:i.device,description:i.description,subgroupMinSize:i.subgroupMinSize,subgroupMaxSize:i.subgroupMaxSize,features:[...a.features],maxBuf:a.limits.maxStorageBufferBindingSize,maxWg:a.limits.maxComputeInvocationsPerWorkgroup,maxWgMem:a.limits.maxComputeWorkgroupStorageSize}));process.exit(0)})" 2>&1 | tee -a "$OUT/info.txt"
    ;;
  selftest)
    phase selftest
    timeout ${SELFTEST_LIMIT:-90} $W selftest > "$OUT/selftest.txt" 2>&1; echo "selftest exit $?"; grep -v ' ok$' "$OUT/selftest.txt" | tail -30
    ;;
  peft)
    phase peft
    timeout 60 python3 scripts/bench_torch.py --peft --device cuda --shape '{"hidden":64,"layers":2,"heads":4,"kvHeads":2,"headDim":16,"ffn":128,"vocab":256,"ropeTheta":10000,"eps":1e-5,"tiedEmbeddings":true}' --batch 2 --seq 16 --warmup 1 --steps 2 2>&1 | tail -5 | tee "$OUT/peft-smoke.txt"
    ;;
  bench)
    phase bench
    # the PEFT peer unless its smoke run ran and failed (then the plain LoRA on CUDA)
    PEER="--torch-peft"
    if [ -f "$OUT/peft-smoke.txt" ] && ! grep -q '"step_ms"' "$OUT/peft-smoke.txt"; then PEER=""; echo "PEFT smoke failed: the plain LoRA on CUDA is the peer"; fi
    timeout ${BENCH_LIMIT:-300} $W bench ${BENCH_ARGS:---full-135m} --torch-device cuda $PEER --no-onnx --no-browser --no-install --out "$OUT/bench.json" > "$OUT/bench.md" 2> "$OUT/bench.log"
    echo "bench exit $?"; tail -45 "$OUT/bench.log"
    ;;
  profile)
    phase profile
    { timeout ${PROFILE_LIMIT:-75} $W profile --tune --shape smollm2-135m --quant q4 --batch 4 --seq 256 --steps 3 2>&1 | tail -45
      for q in f32 q4; do timeout 60 $W profile --tune --shape smollm2-135m --quant $q --decode 4 --top 25 2>&1 | tail -30; done
      echo '--- f32 decode with the norms as their own dispatches (A/B of linear opts.norm)'
      timeout 60 $W profile --tune --shape smollm2-135m --quant f32 --decode 4 --top 12 --no-fused-norm 2>&1 | tail -16
      echo '--- f32 decode with the one-pass argmax (A/B of the split argmax)'
      timeout 60 $W profile --tune --shape smollm2-135m --quant f32 --decode 4 --top 12 --argmax-split off 2>&1 | tail -16; } | tee "$OUT/profile.txt"
    ;;
  esac
done
phase done
