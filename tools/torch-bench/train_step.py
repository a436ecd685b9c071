"""PyTorch baseline for src/bench/train-bench.ts: the same Llama-architecture model and training step
(RMSNorm, RoPE neox, causal GQA attention, SwiGLU, tied embeddings, cross-entropy, AdamW, clip 1.0) on
this CPU. Prints one JSON line: {"tokens_per_sec", "step_ms", "threads", "torch", "loss"}.
Usage: python3 train_step.py '{"vocab":512,"d":128,"layers":4,"heads":4,"kv_heads":4,"ffn":384,"ctx":128,"batch":8,"steps":5,"threads":2}'
"""
import json, math, sys, time
import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(cfg.get("threads", 1))
V, d, L, H, Hkv, FF, T, B = (cfg[k] for k in ("vocab", "d", "layers", "heads", "kv_heads", "ffn", "ctx", "batch"))
D = d // H

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1 = torch.nn.Parameter(torch.ones(d)); self.n2 = torch.nn.Parameter(torch.ones(d))
        self.q = torch.nn.Linear(d, H * D, bias=False); self.k = torch.nn.Linear(d, Hkv * D, bias=False)
        self.v = torch.nn.Linear(d, Hkv * D, bias=False); self.o = torch.nn.Linear(H * D, d, bias=False)
        self.g = torch.nn.Linear(d, FF, bias=False); self.u = torch.nn.Linear(d, FF, bias=False)
        self.dn = torch.nn.Linear(FF, d, bias=False)

def rms(x, w): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

def rope(x, cos, sin):  # x (B, heads, T, D), neox pairs (i, i + D/2)
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)

MASK = torch.full((T, T), float("-inf")).triu(1)

def attend(q, k, v):  # torch 1.13 (Debian) has no scaled_dot_product_attention
    s = (q @ k.transpose(-1, -2)) / math.sqrt(D) + MASK
    return torch.softmax(s, -1) @ v

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(V, d) * 0.02)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(d))
        inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
        ang = torch.arange(T).float()[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos(), ang.sin()

    def forward(self, ids):
        x = F.embedding(ids, self.emb)
        for b in self.blocks:
            h = rms(x, b.n1)
            q = rope(b.q(h).view(B, T, H, D).transpose(1, 2), self.cos, self.sin)
            k = rope(b.k(h).view(B, T, Hkv, D).transpose(1, 2), self.cos, self.sin)
            v = b.v(h).view(B, T, Hkv, D).transpose(1, 2)
            if Hkv != H:
                k = k.repeat_interleave(H // Hkv, 1); v = v.repeat_interleave(H // Hkv, 1)
            a = attend(q, k, v)
            x = x + b.o(a.transpose(1, 2).reshape(B, T, H * D))
            h = rms(x, b.n2)
            x = x + b.dn(F.silu(b.g(h)) * b.u(h))
        return rms(x, self.norm) @ self.emb.t()

m = Model()
decay = [p for p in m.parameters() if p.dim() >= 2]; nodecay = [p for p in m.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
g = torch.Generator().manual_seed(1)

def step():
    ids = torch.randint(0, V, (B, T + 1), generator=g)
    logits = m(ids[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    return loss.item()

step()  # warm-up
t0 = time.perf_counter()
n = cfg.get("steps", 5)
for _ in range(n): loss = step()
dt = (time.perf_counter() - t0) / n
print(json.dumps({"tokens_per_sec": B * T / dt, "step_ms": dt * 1000, "threads": torch.get_num_threads(), "torch": torch.__version__, "loss": loss}))
