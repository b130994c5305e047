"""The operators as hooks: where each one attaches. What each does to a hidden state is
its ``apply`` in the operator table (:data:`msma_sklearn._registry.OPERATORS`)."""

from __future__ import annotations

import hashlib

import torch

from .._registry import operator_for
from ..extraction import (
    resolve_layout,
)
from ._helpers import _O_PROJ, _Q_PROJ, _step_counter, _submodule


class OperatorHooksMixin:
    """The hooks that apply :class:`Intervener`'s operator during a forward pass."""

    def _seed(self, *parts) -> int:
        key = repr((self.random_state, *parts)).encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")

    # ------------------------------------------------------------------- hooks
    def _active(self, state) -> bool:
        if self.positions == "all" or state["prompt_only"] or state["seq2seq_decoder"]:
            return True  # the stack's own positions were checked against `positions` in fit
        prompt_pass = state["step"] == 0
        return prompt_pass if self.positions == "prompt" else not prompt_pass

    def _hooks(self, model, state):
        layout = resolve_layout(model, self.stack_)
        hooks = [(model, "forward_pre", _step_counter(state))]
        if operator_for(self.kind).site == "attention":
            for j in self.layers_:
                block = layout.blocks[j - 1]
                if self.temperature != 1.0 or not self.heads_.size:
                    hooks.append((_submodule(block, _Q_PROJ), "forward", self._query_hook(state)))
                if self.heads_.size:
                    hooks.append(
                        (_submodule(block, _O_PROJ), "forward_pre", self._head_mask_hook(state))
                    )
            return hooks
        for j in self.layers_:
            if j < layout.n_layers:
                hooks.append((layout.blocks[j], "forward_pre", self._state_hook(int(j), state)))
            else:  # the final state: the stack's own output (after its final norm)
                hooks.append((layout.module, "forward", self._output_hook(int(j), state)))
        return hooks

    def _query_hook(self, state):
        scale = 1.0 / self.temperature
        hidden = self.hidden_size_

        def hook(module, args, kwargs, output):
            if not self._active(state):
                return None
            if output.shape[-1] == 3 * hidden:  # GPT-2's fused [q | k | v] projection
                return torch.cat([output[..., :hidden] * scale, output[..., hidden:]], dim=-1)
            return output * scale

        return hook

    def _head_mask_hook(self, state):
        n_heads = int(self._loaded()[0].config.get_text_config().num_attention_heads)
        heads = torch.as_tensor(self.heads_)

        def mask(x):
            keep = torch.ones(n_heads, dtype=x.dtype, device=x.device)
            keep[heads.to(x.device)] = 0
            per_head = x.unflatten(-1, (n_heads, x.shape[-1] // n_heads))
            return (per_head * keep[:, None]).flatten(-2)

        return self._input_hook(state, mask)

    def _state_hook(self, j: int, state):
        return self._input_hook(state, lambda h: self._apply(h, j, state))

    def _input_hook(self, state, change):
        """A forward pre-hook replacing a module's first input ``x`` by ``change(x)``."""

        def hook(module, args, kwargs):
            if not self._active(state):
                return None
            if args:
                return (change(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": change(kwargs["hidden_states"])}

        return hook

    def _output_hook(self, j: int, state):
        def hook(module, args, kwargs, output):
            if not self._active(state):
                return None
            if isinstance(output, tuple):
                return (self._apply(output[0], j, state), *output[1:])
            output["last_hidden_state"] = self._apply(output["last_hidden_state"], j, state)
            return output

        return hook

    def _apply(self, h: torch.Tensor, j: int, state) -> torch.Tensor:
        return operator_for(self.kind).apply(self, h, j, state)

    def _standard_noise(self, h: torch.Tensor, j: int, state) -> torch.Tensor:
        """Standard normal noise shaped like ``h``, seeded per (prompt, return sequence,
        forward pass, layer); on the prompt's pass only its real tokens get noise, so
        padding and batching do not change it."""
        eps = torch.zeros_like(h)
        n_prompts = len(state["prompts"])
        copies = h.shape[0] // n_prompts  # 1 for T5's encoder, else the return sequences
        prompt_pass = state["prompt_only"] or (state["step"] == 0 and not state["seq2seq_decoder"])
        for b in range(h.shape[0]):
            prompt = state["prompts"][b // copies]
            gen = torch.Generator().manual_seed(
                self._seed("noise", prompt, b % copies, max(state["step"], 0), j)
            )
            if prompt_pass:
                real = state["mask"][b // copies].to(h.device)
                draw = torch.randn((int(real.sum()), h.shape[2]), generator=gen)
                eps[b, real] = draw.to(h.device, h.dtype)
            else:
                eps[b] = torch.randn(h.shape[1:], generator=gen).to(h.device, h.dtype)
        return eps
