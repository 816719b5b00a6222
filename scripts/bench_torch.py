#!/usr/bin/env python3
"""PyTorch peer of `whittle bench`: the same LoRA training step in plain eager PyTorch on the CPU
(or, with --peft --device cuda, Hugging Face transformers + PEFT on a GPU: the real-GPU peer).

Same model shapes (a Llama-family decoder: RMSNorm, rotate-half RoPE, grouped-query causal
attention, SwiGLU MLP, tied or untied lm_head), same LoRA (frozen base nn.Linear + A (R,IC) and
B (OC,R), scale alpha/r, dropout on the adapter input; A Kaiming-uniform, B = 0, as PEFT), same
batch (B sequences of T random token ids, next-token targets, last position ignored), float32,
AdamW (lr 2e-4, betas 0.9/0.999, eps 1e-8, weight decay 0) with gradient clipping at 1.0, eager
mode (no torch.compile). The attention is written out (q·kᵀ, causal mask, softmax, ·v) because the
Debian torch (1.13) has no scaled_dot_product_attention.

Weights: --model DIR loads a Hugging Face folder (config.json + model.safetensors, F32/F16/BF16);
--shape JSON builds random weights of that config. --quant q8|q4 quantizes each frozen linear and
the embedding the way whittle does (blocks of 32 inputs, absmax scale, round half away from zero)
and DEQUANTIZES it back to float32 — torch has no q8/q4 matmul, so a quantized base costs torch
exactly what f32 costs.

Prints one JSON object (last line of stdout): torch version, threads, the BLAS torch was built
with, a 1024³ sgemm GFLOP/s, per-step milliseconds of the timed steps, tokens/s, the last loss.
Usage: python3 scripts/bench_torch.py (--model DIR | --shape JSON) --batch B --seq T
       [--quant f32|q8|q4] [--rank 16 --alpha 32 --dropout 0.05] [--warmup 2 --steps 3]
       [--sgemm-only] [--no-sgemm] [--threads N] [--device cpu|cuda] [--peft [--attn sdpa|eager]]
       [--peft --decode --prompt P --gen G --runs R]
--peft builds transformers' LlamaForCausalLM and wraps it with peft's LoRA (same r, alpha, dropout,
targets); float32, no TF32 (PyTorch's default), eager mode (no torch.compile).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def sgemm_gflops(n=1024, reps=None, dev=torch.device('cpu')):
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    for _ in range(2):
        torch.mm(a, b)
    sync(dev)
    t = time.perf_counter()
    torch.mm(a, b)
    sync(dev)
    one = max(1e-5, time.perf_counter() - t)
    reps = reps or max(3, min(50 if dev.type == 'cpu' else 2000, int(1.0 / one)))
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        sync(dev)
        runs.append(2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9)
    runs.sort()
    return runs[1]


def blas_info():
    try:
        cfg = torch.__config__.show()
    except Exception:
        return 'unknown'
    for line in cfg.splitlines():
        if 'BLAS_INFO' in line:
            for part in line.split(','):
                if 'BLAS_INFO' in part:
                    return part.split('=')[-1].strip()
    return 'unknown'


# ---- weights -------------------------------------------------------------------------------

SAFE_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


def load_safetensors(path):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        s, e = info['data_offsets']
        dt = SAFE_DTYPES.get(info['dtype'])
        if dt is None:
            raise SystemExit(f'{path}: tensor {name} has dtype {info["dtype"]}; only F32/F16/BF16 are supported')
        t = torch.frombuffer(data, dtype=dt, offset=s, count=(e - s) // torch.tensor([], dtype=dt).element_size())
        out[name] = t.reshape(info['shape']).float().clone()
    return out


def config_from_hf(d):
    heads = d['num_attention_heads']
    hidden = d['hidden_size']
    return {
        'hidden': hidden, 'layers': d['num_hidden_layers'], 'heads': heads,
        'kvHeads': d.get('num_key_value_heads', heads), 'headDim': d.get('head_dim', hidden // heads),
        'ffn': d['intermediate_size'], 'vocab': d['vocab_size'], 'ropeTheta': d.get('rope_theta', 10000.0),
        'eps': d.get('rms_norm_eps', 1e-5), 'tiedEmbeddings': d.get('tie_word_embeddings', False),
    }


def quant_dequant(w, fmt):
    """whittle's q8 / q4 (docs/ENGINE.md): per row, blocks of 32 inputs, d = absmax/127 (q8) or
    absmax/7 (q4, codes clamped to -8..7), round half away from zero; returned dequantized (f32)."""
    if fmt == 'f32':
        return w
    rows, cols = w.shape
    nb = (cols + 31) // 32
    x = torch.zeros(rows, nb * 32)
    x[:, :cols] = w
    x = x.view(rows, nb, 32)
    qmax = 127.0 if fmt == 'q8' else 7.0
    d = x.abs().amax(dim=2, keepdim=True) / qmax
    safe = torch.where(d == 0, torch.ones_like(d), d)
    q = torch.sign(x) * torch.floor(x.abs() / safe + 0.5)
    if fmt == 'q4':
        q = q.clamp(-8, 7)
    return (q * d).view(rows, nb * 32)[:, :cols].contiguous()


# ---- model ---------------------------------------------------------------------------------

class LoRALinear(nn.Module):
    """Frozen base Linear (no bias) + dropout(x)·Aᵀ·Bᵀ·(alpha/r)."""

    def __init__(self, weight, r, alpha, dropout):
        super().__init__()
        out_f, in_f = weight.shape
        self.base = nn.Linear(in_f, out_f, bias=False)
        self.base.weight.data.copy_(weight)
        self.base.weight.requires_grad_(False)
        self.r = r
        if r > 0:
            self.A = nn.Parameter(torch.empty(r, in_f))
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # PEFT: bound 1/sqrt(in)
            self.B = nn.Parameter(torch.zeros(out_f, r))
            self.drop = nn.Dropout(dropout)
            self.scale = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.r > 0:
            y = y + (self.drop(x) @ self.A.t() @ self.B.t()) * self.scale
        return y


class RMSNorm(nn.Module):
    def __init__(self, w, eps):
        super().__init__()
        self.weight = nn.Parameter(w.clone(), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    # x (B, H, T, HS), rotate-half
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Layer(nn.Module):
    def __init__(self, cfg, w, lora):
        super().__init__()
        r, a, p = lora
        self.nh, self.nkv, self.hs = cfg['heads'], cfg['kvHeads'], cfg['headDim']
        self.n1 = RMSNorm(w['attnNorm'], cfg['eps'])
        self.n2 = RMSNorm(w['ffnNorm'], cfg['eps'])
        self.q = LoRALinear(w['wq'], r, a, p)
        self.k = LoRALinear(w['wk'], r, a, p)
        self.v = LoRALinear(w['wv'], r, a, p)
        self.o = LoRALinear(w['wo'], r, a, p)
        self.gate = LoRALinear(w['wGate'], r, a, p)
        self.up = LoRALinear(w['wUp'], r, a, p)
        self.down = LoRALinear(w['wDown'], r, a, p)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.nh, self.hs).transpose(1, 2)
        k = self.k(h).view(B, T, self.nkv, self.hs).transpose(1, 2)
        v = self.v(h).view(B, T, self.nkv, self.hs).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        g = self.nh // self.nkv
        if g > 1:
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hs)) + mask
        att = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, self.nh * self.hs)
        x = x + self.o(att)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, cfg, w, lora):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Parameter(w['embed'], requires_grad=False)
        self.lm_head = self.embed if w['lmHead'] is None else nn.Parameter(w['lmHead'], requires_grad=False)
        self.layers = nn.ModuleList([Layer(cfg, lw, lora) for lw in w['layers']])
        self.norm = RMSNorm(w['norm'], cfg['eps'])
        hs = cfg['headDim']
        self.inv = 1.0 / (cfg['ropeTheta'] ** (torch.arange(0, hs, 2).float() / hs))

    def forward(self, ids, targets):
        B, T = ids.shape
        t = torch.arange(T, device=ids.device).float()
        fr = torch.outer(t, self.inv.to(ids.device))
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), float('-inf'), device=ids.device).triu(1)
        x = F.embedding(ids, self.embed)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.norm(x) @ self.lm_head.t()
        return F.cross_entropy(logits.view(B * T, -1), targets.view(-1), ignore_index=-100)


def build_weights(cfg, tensors, quant):
    C, QD, KVD, Fd, V = cfg['hidden'], cfg['heads'] * cfg['headDim'], cfg['kvHeads'] * cfg['headDim'], cfg['ffn'], cfg['vocab']
    qd = lambda w: quant_dequant(w, quant)
    if tensors is None:  # random, like src/bench/shapes.ts randomWeights
        lin = lambda r, c: (torch.rand(r, c) * 2 - 1) * math.sqrt(3 / c)
        layers = [{
            'attnNorm': torch.ones(C), 'ffnNorm': torch.ones(C),
            'wq': lin(QD, C), 'wk': lin(KVD, C), 'wv': lin(KVD, C), 'wo': lin(C, QD),
            'wGate': lin(Fd, C), 'wUp': lin(Fd, C), 'wDown': lin(C, Fd),
        } for _ in range(cfg['layers'])]
        embed = (torch.rand(V, C) * 2 - 1) * 0.05
        lm = None if cfg['tiedEmbeddings'] else lin(V, C)
        norm = torch.ones(C)
    else:
        g = lambda n: tensors[n]
        p = 'model.layers.%d.'
        layers = [{
            'attnNorm': g(p % i + 'input_layernorm.weight'), 'ffnNorm': g(p % i + 'post_attention_layernorm.weight'),
            'wq': g(p % i + 'self_attn.q_proj.weight'), 'wk': g(p % i + 'self_attn.k_proj.weight'),
            'wv': g(p % i + 'self_attn.v_proj.weight'), 'wo': g(p % i + 'self_attn.o_proj.weight'),
            'wGate': g(p % i + 'mlp.gate_proj.weight'), 'wUp': g(p % i + 'mlp.up_proj.weight'),
            'wDown': g(p % i + 'mlp.down_proj.weight'),
        } for i in range(cfg['layers'])]
        embed = tensors.get('model.embed_tokens.weight', tensors.get('lm_head.weight'))
        lm = None if cfg['tiedEmbeddings'] else tensors.get('lm_head.weight')
        norm = g('model.norm.weight')
    for lw in layers:
        for k in ('wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown'):
            lw[k] = qd(lw[k])
    return {'embed': qd(embed), 'lmHead': None if lm is None else qd(lm), 'norm': norm, 'layers': layers}


# ---- the GPU peer: Hugging Face transformers + PEFT ------------------------------------------

def require_peft():
    """The transformers and peft modules, or a clear exit when either is missing."""
    try:
        import peft
        import transformers
    except ImportError as e:
        raise SystemExit(f'--peft needs the Python packages transformers and peft ({e}); '
                         'without them, leave --peft out for the plain LoRA peer')
    return transformers, peft


def peft_model(cfg, tensors, quant, lora, model_dir, attn):
    """LlamaForCausalLM (transformers) with a PEFT LoRA on q,k,v,o,gate,up,down: the library
    stack users fine-tune with on a GPU. Weights from --model DIR (HF folder) or random (--shape);
    a q8/q4 base is quantized and dequantized to float32 in place (same cost as f32)."""
    transformers, peft = require_peft()
    LlamaConfig, LlamaForCausalLM = transformers.LlamaConfig, transformers.LlamaForCausalLM
    LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model
    hc = LlamaConfig(
        hidden_size=cfg['hidden'], intermediate_size=cfg['ffn'], num_hidden_layers=cfg['layers'],
        num_attention_heads=cfg['heads'], num_key_value_heads=cfg['kvHeads'], head_dim=cfg['headDim'],
        vocab_size=cfg['vocab'], rope_theta=cfg['ropeTheta'], rms_norm_eps=cfg['eps'],
        tie_word_embeddings=cfg['tiedEmbeddings'], max_position_embeddings=4096, use_cache=False,
        attn_implementation=attn)
    m = LlamaForCausalLM(hc).float()
    if model_dir:
        tensors = dict(tensors)
        if 'model.embed_tokens.weight' not in tensors and 'lm_head.weight' in tensors:  # tied, stored once as lm_head
            tensors['model.embed_tokens.weight'] = tensors['lm_head.weight']
        missing, unexpected = m.load_state_dict(tensors, strict=False)
        missing = [k for k in missing if not (k == 'lm_head.weight' and cfg['tiedEmbeddings']) and 'rotary' not in k]
        if missing:
            raise SystemExit(f'{model_dir}: tensors missing for transformers\' Llama: {missing[:5]}')
    if quant != 'f32':
        with torch.no_grad():
            for name, mod in m.named_modules():
                if isinstance(mod, nn.Linear) and name.split('.')[-1] in ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'):
                    mod.weight.copy_(quant_dequant(mod.weight.float().cpu(), quant))
            emb = m.get_input_embeddings().weight
            emb.copy_(quant_dequant(emb.float().cpu(), quant))
    r, a, p = lora
    lc = LoraConfig(r=r, lora_alpha=a, lora_dropout=p, bias='none', task_type='CAUSAL_LM',
                    target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])
    return get_peft_model(m, lc)


class PeftLoss(nn.Module):
    """Same call shape as Model: (ids, targets) → mean next-token cross-entropy."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids, targets):
        logits = self.m(input_ids=ids).logits
        B, T, V = logits.shape
        return F.cross_entropy(logits.view(B * T, V).float(), targets.view(-1), ignore_index=-100)


def decode_bench(m, cfg, a, dev):
    """Greedy generation with the KV cache (transformers generate on the PEFT model, adapter active):
    prefill = the time to the first new token; decode tokens/s = (gen − 1) / (time of gen tokens −
    time of 1 token), both on the same random prompt; median of `runs` after a warm-up."""
    m.eval()
    m.config.use_cache = True
    g = torch.Generator().manual_seed(a.seed + 7)
    kw = dict(do_sample=False, use_cache=True, pad_token_id=0, eos_token_id=None)

    def gen(ids, n):
        sync(dev)
        t = time.perf_counter()
        with torch.no_grad():
            out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, **kw)
        sync(dev)
        assert out.shape[1] == ids.shape[1] + n, f'generated {out.shape[1] - ids.shape[1]} tokens, wanted {n}'
        return time.perf_counter() - t

    pre, dec = [], []
    for r in range(a.runs + 1):
        ids = torch.randint(0, cfg['vocab'], (1, a.prompt), generator=g).to(dev)
        t1 = gen(ids, 1)
        tn = gen(ids, a.gen)
        if r == 0:
            continue
        pre.append(a.prompt / t1)
        dec.append((a.gen - 1) / max(tn - t1, 1e-9))
    return {'prompt': a.prompt, 'gen': a.gen, 'prefill_tokens_per_s': pre, 'decode_tokens_per_s': dec}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument('--model')
    src.add_argument('--shape')
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--seq', type=int, default=64)
    ap.add_argument('--quant', default='f32', choices=['f32', 'q8', 'q4'])
    ap.add_argument('--rank', type=int, default=16)
    ap.add_argument('--alpha', type=float, default=32)
    ap.add_argument('--dropout', type=float, default=0.05)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--threads', default='auto',
                    help="intra-op threads: N, or 'auto' (try 1 and all cores on two warm-up steps each, keep the faster: "
                         "on a busy machine OpenMP's spinning makes all-cores many times slower)")
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--device', default='cpu', help="torch device: cpu (default) or cuda")
    ap.add_argument('--peft', action='store_true',
                    help='transformers LlamaForCausalLM + PEFT LoRA instead of the plain model (the GPU peer; needs transformers and peft)')
    ap.add_argument('--attn', default='sdpa', help="with --peft: transformers' attention implementation (sdpa, eager)")
    ap.add_argument('--decode', action='store_true',
                    help='with --peft: time greedy generation (transformers generate, KV cache) instead of training steps')
    ap.add_argument('--prompt', type=int, default=64, help='--decode: prompt tokens')
    ap.add_argument('--gen', type=int, default=16, help='--decode: new tokens')
    ap.add_argument('--runs', type=int, default=3, help='--decode: timed runs (after one warm-up)')
    ap.add_argument('--sgemm-only', action='store_true')
    ap.add_argument('--no-sgemm', action='store_true')
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    if a.threads != 'auto':
        torch.set_num_threads(max(1, int(a.threads)))
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    res = {
        'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas_info(), 'device': str(dev),
        'sgemm1024_gflops': None if a.no_sgemm else sgemm_gflops(dev=dev),
    }
    if dev.type == 'cuda':
        res['device_name'] = torch.cuda.get_device_name(dev)
        res['tf32'] = torch.backends.cuda.matmul.allow_tf32
    if a.sgemm_only:
        print(json.dumps(res))
        return
    if a.model:
        with open(os.path.join(a.model, 'config.json')) as f:
            cfg = config_from_hf(json.load(f))
        tensors = load_safetensors(os.path.join(a.model, 'model.safetensors'))
    elif a.shape:
        cfg = json.loads(a.shape)
        tensors = None
    else:
        raise SystemExit('--model DIR or --shape JSON is required')
    t0 = time.perf_counter()
    if a.peft:
        transformers, peft = require_peft()
        model = PeftLoss(peft_model(cfg, tensors, a.quant, (a.rank, a.alpha, a.dropout), a.model, a.attn))
        res['peer'] = f'transformers {transformers.__version__} + peft {peft.__version__} ({model.m.config._attn_implementation} attention)'
    else:
        model = Model(cfg, build_weights(cfg, tensors, a.quant), (a.rank, a.alpha, a.dropout))
        res['peer'] = 'plain PyTorch LoRA (this script)'
    model.to(dev)
    if a.decode:
        if not a.peft:
            raise SystemExit('--decode needs --peft (transformers generate)')
        res.update(decode_bench(model.m, cfg, a, dev))
        print(json.dumps(res))
        return
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    build_s = time.perf_counter() - t0
    B, T, V = a.batch, a.seq, cfg['vocab']
    g = torch.Generator().manual_seed(a.seed + 1)
    state = {'loss': None}

    def step():
        ids = torch.randint(0, V, (B, T), generator=g)
        targets = torch.full((B, T), -100, dtype=torch.long)
        targets[:, :-1] = ids[:, 1:]
        ids, targets = ids.to(dev), targets.to(dev)
        sync(dev)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(ids, targets)
        out.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state['loss'] = out.item()
        return (time.perf_counter() - t) * 1000

    tried = {}
    if a.threads == 'auto' and dev.type == 'cpu':
        for th in sorted({1, cores}):
            torch.set_num_threads(th)
            tried[th] = [step() for _ in range(max(2, a.warmup))][-1]
        torch.set_num_threads(min(tried, key=tried.get))
    else:
        for _ in range(a.warmup):
            step()
    ms = [step() for _ in range(a.steps)]
    loss = state['loss']
    res['threads'] = torch.get_num_threads()
    res['threads_tried_ms'] = {str(k): v for k, v in tried.items()}
    res.update({
        'config': cfg, 'batch': B, 'seq': T, 'quant': a.quant, 'quant_note': None if a.quant == 'f32' else
        'base dequantized to float32 (torch has no q8/q4 matmul): same cost as f32',
        'trainable_params': sum(p.numel() for p in params), 'build_s': build_s,
        'step_ms': ms, 'tokens_per_s': [B * T / (x / 1000) for x in ms], 'loss': loss,
    })
    print(json.dumps(res))


if __name__ == '__main__':
    sys.exit(main())
