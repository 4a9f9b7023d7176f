"""Token counts with the CLIP BPE tokenizer SDXL's two text encoders use, and what the 77-token limit cuts off.

SDXL pipelines tokenize with ``transformers.CLIPTokenizer`` (byte-level BPE, 49,408 tokens) padded and truncated
to 77 positions: a start token, at most 75 content tokens, an end token. Anything after the 75th content token never
reaches the model. We build that same tokenizer class from the CLIP vocabulary that ``open_clip`` ships
(``bpe_simple_vocab_16e6.txt.gz``), so counting works offline and without importing torch; the file is located
without importing open_clip. ``tests/test_prompts_tokens.py`` checks the ids against open_clip's reference tokenizer.

    tc = count_tokens("nwo_style navy t-shirt, studio photograph")
    tc.count, tc.truncated, tc.cut
"""
from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from workbench.models.clip_bytes import bytes_to_unicode

CONTEXT_LENGTH = 77  # positions in SDXL's text encoders
CONTENT_LIMIT = CONTEXT_LENGTH - 2  # minus the start and end tokens
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"


@dataclass(frozen=True)
class TokenCount:
    """How long a prompt is for the text encoder, and what of it the encoder sees."""

    count: int  # content tokens, without the start/end tokens
    kept: str  # the text up to the limit: what the encoder sees
    cut: str  # the text past the limit, dropped by the pipeline ("" when it fits)
    limit: int = CONTENT_LIMIT

    @property
    def total(self) -> int:
        """Positions used including start and end: compare with 77."""
        return self.count + 2

    @property
    def truncated(self) -> bool:
        return self.count > self.limit

    @property
    def warning(self) -> str:
        if not self.truncated:
            return ""
        return (f"{self.total} tokens: over the {self.limit + 2}-token limit by {self.count - self.limit}; "
                f"cut: \"{self.cut}\"")


def vocab_path() -> Path:
    """CLIP's BPE merges file as bundled with open_clip_torch (found without importing open_clip, which imports
    torch)."""
    spec = importlib.util.find_spec("open_clip")
    path = Path(spec.origin).parent / VOCAB_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError(f"the CLIP vocabulary {VOCAB_FILE} was not found: install open_clip_torch "
                           "(pip install -r requirements.txt); token counts need it")
    return path


@lru_cache(maxsize=1)
def clip_tokenizer():
    """``transformers.CLIPTokenizer`` over CLIP's vocabulary: the vocabulary is built the way OpenAI's CLIP builds it
    (256 byte symbols, their end-of-word forms, one entry per merge, then the start and end tokens)."""
    from transformers import CLIPTokenizer

    lines = gzip.open(vocab_path()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges),
             "<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=merges)


def token_ids(text: str) -> list[int]:
    """Content token ids of ``text`` (without start/end), as SDXL's tokenizer produces them."""
    return clip_tokenizer().backend_tokenizer.encode(text, add_special_tokens=False).ids


def count_tokens(text: str, limit: int = CONTENT_LIMIT) -> TokenCount:
    return count_tokens_batch([text], limit)[0]


def count_tokens_batch(texts: Sequence[str], limit: int = CONTENT_LIMIT) -> list[TokenCount]:
    """Count many prompts in one call (the Rust tokenizer batches them); identical texts are tokenized once."""
    unique = list(dict.fromkeys(texts))
    encodings = clip_tokenizer().backend_tokenizer.encode_batch(unique, add_special_tokens=False)
    by_text: dict[str, TokenCount] = {}
    for text, enc in zip(unique, encodings):
        n = len(enc.ids)
        if n <= limit:
            by_text[text] = TokenCount(n, text, "", limit)
        else:
            start = enc.offsets[limit][0]  # offsets point into the original text
            by_text[text] = TokenCount(n, text[:start].rstrip(), text[start:].strip(), limit)
    return [by_text[t] for t in texts]
