"""Extraction at GPU scale: the extractor as a share of the padding-free ceiling.

For each random-weight model of a real architecture (built from its config, with
the real tokenizer, saved to a temporary folder and loaded by path), in one run:

  ceiling   padding-free forward of random token ids at a fixed length, batches of
            ``--ceiling-tokens`` tokens, ``output_hidden_states=True``: the physical
            reference for this model, dtype and device;
  plain     the loop a user writes: batches of 32 in input order, padded to the
            longest, ``output_hidden_states=True``, masked mean, copied to the host;
  extractor HiddenStateExtractor at its defaults (``"auto"``: a 16,384-token
            budget on a GPU), at its defaults with all texts in one shard (its
            tokenisation windows restart at every shard of ``shard_size`` texts),
            at the old default (32 texts per batch, no budget),
            and with ``max_batch_tokens`` budgets (no cap on texts);
  packed    decoders only: padding-free packing, a prototype of what the
            extractor could adopt -- texts sorted by length and packed whole
            into rows of 256 tokens with per-text position ids, no attention
            mask (transformers then builds the block-diagonal causal mask from
            the position ids), rows up to the budget per forward, mean pooling by
            ``index_add_`` per text.

  steady    the extractor at its defaults on ``--steady-texts`` texts (the same
            corpus repeated), against the ceiling: the share once per-call costs
            (first batch, last copy back) are spread over a larger corpus.

Per model it also prints how long tokenising the texts takes on the host
(``extraction._core.tokenise``, one thread) beside the time the ceiling needs for
their tokens: work the extractor must hide behind the forward passes.

Every method runs the transformer without its LM head (``model.model`` for a
causal LM), as the extractor does. Each is timed after a warm-up with ``torch.cuda.synchronize()`` around the call,
the methods interleaved, median of ``--repeats``; tokens/s counts real tokens
(padding excluded). Every hidden state is mean-pooled over all real tokens
(``sink_tokens=0``, as the plain loop does). Outputs of the extractor are checked against the plain loop
(max relative error printed). Models: BERT-base (``BertConfig()``), the
SmolLM2-135M architecture (Llama, 30 x 576), a 1.2B Llama (16 x 2048, 32 heads,
8 KV heads, intermediate 8192), the Llama in bfloat16 as ../shared/GPU.md says.

Run on a GPU:  python benchmarks/extraction_gpu.py --device cuda
CPU smoke run (tiny sizes, checks the script end to end):  python benchmarks/extraction_gpu.py --smoke
Tokenizer files are taken from the installed MiniLM and SmolLM2 packages or from
``--tokenizers DIR`` (a folder holding ``bert/`` and ``llama/`` tokenizer files, for
a machine without those packages; ``--save-tokenizers DIR`` writes it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from msma_sklearn import HiddenStateExtractor  # noqa: E402
from msma_sklearn.datasets import load_corpus  # noqa: E402


def _configs(smoke: bool) -> dict:
    from transformers import BertConfig, LlamaConfig

    if smoke:
        return {
            "bert-small": (
                "bert",
                BertConfig(
                    hidden_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    intermediate_size=128,
                ),
                "float32",
            ),
            "llama-small": (
                "llama",
                LlamaConfig(
                    hidden_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    num_key_value_heads=2,
                    intermediate_size=128,
                    vocab_size=49152,
                    tie_word_embeddings=True,
                ),
                "float32",
            ),
        }
    smollm2 = LlamaConfig(
        hidden_size=576,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        intermediate_size=1536,
        vocab_size=49152,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        tie_word_embeddings=True,
    )
    llama_1b = LlamaConfig(
        hidden_size=2048,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=8192,
        vocab_size=49152,
        tie_word_embeddings=True,
    )
    return {
        "bert-base": ("bert", BertConfig(), "float32"),
        "smollm2-135m-arch": ("llama", smollm2, "float32"),
        "llama-1.2b-arch": ("llama", llama_1b, "bfloat16"),
    }


def _tokenizer(kind: str, folder: Path | None):
    from transformers import AutoTokenizer

    if folder is not None:
        return AutoTokenizer.from_pretrained(folder / kind)
    from msma_sklearn.extraction import load_model

    return load_model("minilm" if kind == "bert" else "smollm2-135m", device="cpu")[1]


def _build(kind, config, tokenizer, path: Path) -> None:
    from transformers import BertModel, LlamaForCausalLM

    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        model = (BertModel if kind == "bert" else LlamaForCausalLM)(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _base(model):
    """The transformer without its LM head (what the extractor runs): like for like."""
    return getattr(model, "model", model)


def _plain(model, tokenizer, texts, device, batch=32):
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tokenizer(texts[i : i + batch], padding=True, return_tensors="pt").to(device)
            hs = _base(model)(**enc, output_hidden_states=True).hidden_states
            m = enc["attention_mask"].unsqueeze(-1).to(hs[0].dtype)
            pooled = torch.cat([(h * m).sum(1) / m.sum(1) for h in hs], dim=1)
            out.append(pooled.float().cpu())
    return torch.cat(out).numpy()


def _ceiling(model, vocab, device, tokens: int, length: int = 128):
    rows = max(1, tokens // length)
    ids = torch.randint(5, vocab, (rows, length), generator=torch.Generator().manual_seed(1))
    ids = ids.to(device)
    with torch.inference_mode():
        _base(model)(input_ids=ids, output_hidden_states=True)
    return rows * length


def _packed(model, tokenizer, texts, device, budget: int, row_len: int = 256):
    """Mean of every hidden state over each text's tokens, texts packed into rows."""
    enc = tokenizer(texts)["input_ids"]
    order = np.argsort([-len(e) for e in enc], kind="stable")
    packs, ids_r, pos_r, own_r = [], [], [], []
    for i in order:
        e = enc[i]
        if ids_r and len(ids_r) + len(e) > row_len:
            packs.append((ids_r, pos_r, own_r))
            ids_r, pos_r, own_r = [], [], []
        ids_r += e
        pos_r += range(len(e))
        own_r += [int(i)] * len(e)
    if ids_r:
        packs.append((ids_r, pos_r, own_r))
    width = model.config.hidden_size
    n_states = model.config.num_hidden_layers + 1
    counts = torch.tensor([len(e) for e in enc], dtype=torch.float32)
    out = torch.zeros(len(texts) + 1, n_states, width, device=device)
    per_call = max(1, budget // row_len)
    base = _base(model)
    with torch.inference_mode():
        for s in range(0, len(packs), per_call):
            chunk = packs[s : s + per_call]
            n = max(len(p[0]) for p in chunk)
            ids = torch.zeros(len(chunk), n, dtype=torch.long)
            pos = torch.arange(n).repeat(len(chunk), 1)  # a row's tail: its own sequence
            own = torch.full((len(chunk), n), len(texts), dtype=torch.long)
            for r, (a, b, c) in enumerate(chunk):
                ids[r, : len(a)] = torch.tensor(a)
                pos[r, : len(a)] = torch.tensor(b)
                own[r, : len(a)] = torch.tensor(c)
            own = own.reshape(-1).to(device, non_blocking=True)
            hs = base(
                input_ids=ids.to(device, non_blocking=True),
                position_ids=pos.to(device, non_blocking=True),
                output_hidden_states=True,
                use_cache=False,
            ).hidden_states
            flat = torch.stack(hs, dim=2).reshape(-1, n_states, width)
            out.index_add_(0, own, flat.float())
    out = out[:-1].cpu() / counts[:, None, None]
    return out.reshape(len(texts), -1).numpy()


def _extract(params: dict, texts):
    return HiddenStateExtractor(**params).fit(texts).transform(texts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny models, few texts (CPU)")
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ceiling-tokens", type=int, default=16384)
    parser.add_argument("--budgets", default="4096,8192,16384,32768")
    parser.add_argument("--steady-texts", type=int, default=16384)
    parser.add_argument("--tokenizers", type=Path, default=None)
    parser.add_argument("--save-tokenizers", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.save_tokenizers is not None:
        for kind in ("bert", "llama"):
            _tokenizer(kind, None).save_pretrained(args.save_tokenizers / kind)
        print(f"tokenizers written to {args.save_tokenizers}")
        return
    device = torch.device(args.device)
    n_texts = 64 if args.smoke else args.texts
    n_steady = 256 if args.smoke else args.steady_texts
    budgets = [256, 1024] if args.smoke else [int(b) for b in args.budgets.split(",")]
    ceiling_tokens = 1024 if args.smoke else args.ceiling_tokens
    corpus = load_corpus().texts
    texts = [corpus[i % len(corpus)] for i in range(n_texts)]  # held-out-sized short texts
    steady = [corpus[i % len(corpus)] for i in range(n_steady)]
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}),"
        f" torch {torch.__version__}, {n_texts} texts, median of {args.repeats}"
    )
    header = f"{'model':<20} {'dtype':<9} {'method':<28} {'tok/s':>10} {'vs plain':>9} {'of ceiling':>11}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, config, dtype) in _configs(args.smoke).items():
            path = Path(tmp) / name
            tokenizer = _tokenizer(kind, args.tokenizers)
            _build(kind, config, tokenizer, path)
            from msma_sklearn.extraction import load_model

            model, tok = load_model(str(path), device=str(device), dtype=dtype)
            if tok.pad_token is None:  # the plain loop pads with the tokenizer
                tok.pad_token = tok.eos_token
            n_real = sum(len(ids) for ids in tok(texts)["input_ids"])
            spec = {"model": str(path), "device": str(device), "dtype": dtype, "sink_tokens": 0}
            methods = {
                "ceiling (padding-free)": partial(
                    _ceiling, model, config.vocab_size, device, ceiling_tokens
                ),
                "plain loop, batch 32": partial(_plain, model, tok, texts, device),
                "extractor, defaults (auto)": partial(_extract, spec, texts),
                "extractor, batch 32": partial(
                    _extract, {**spec, "batch_size": 32, "max_batch_tokens": None}, texts
                ),
                # one shard: tokenisation windows (64 doubling to 4,096 texts) restart at
                # every shard, so 1,024-text shards cap these short texts' batches at 512
                "extractor, defaults, 1 shard": partial(
                    _extract, {**spec, "shard_size": max(n_texts, 1)}, texts
                ),
            }
            for b in budgets:
                methods[f"extractor, {b} tokens"] = partial(
                    _extract, {**spec, "batch_size": 1_000_000, "max_batch_tokens": b}, texts
                )
            if kind == "llama":
                for b in budgets[-2:]:
                    methods[f"packed, {b} tokens"] = partial(_packed, model, tok, texts, device, b)
            methods[f"steady: defaults, {n_steady} texts"] = partial(_extract, spec, steady)
            times = {k: [] for k in methods}
            outputs = {}
            for fn in methods.values():  # warm-up
                fn()
            for _ in range(args.repeats):
                for k, fn in methods.items():  # interleaved
                    seconds, out = _timed(fn, device)
                    times[k].append(seconds)
                    outputs[k] = out
            speed = {}
            n_steady_real = sum(len(ids) for ids in tok(steady)["input_ids"])
            for k, ts in times.items():
                tokens = outputs[k] if k.startswith("ceiling") else n_real
                tokens = n_steady_real if k.startswith("steady") else tokens
                speed[k] = tokens / statistics.median(ts)
            ref = outputs["plain loop, batch 32"]
            for k, s in speed.items():
                vs = "" if k.startswith("ceiling") else f"{s / speed['plain loop, batch 32']:.2f}"
                print(
                    f"{name:<20} {dtype:<9} {k:<28} {s:>10,.0f} {vs:>9} "
                    f"{s / speed['ceiling (padding-free)']:>10.0%}"
                )
                if k.startswith(("extractor", "packed", "steady")):
                    got = outputs[k][: len(ref)]  # steady: its first texts are these texts
                    err = np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-12)
                    print(f"{'':<20} {'':<9} {'  max rel. error vs plain':<28} {err:>10.1e}")
            from msma_sklearn.extraction._core import tokenise

            seconds = min(_timed(partial(tokenise, tok, texts, 128), device)[0] for _ in range(3))
            print(
                f"{'':<20} {'':<9} tokenising the {n_texts} texts: {seconds * 1e3:.0f} ms on the "
                f"host; the ceiling runs their {n_real:,} tokens in "
                f"{n_real / speed['ceiling (padding-free)'] * 1e3:.0f} ms"
            )
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
