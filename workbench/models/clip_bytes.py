"""CLIP's byte-level alphabet, the one place it is written: the tokenizers of the tiny kit (``models.tiny``) and CLIP
token counting (``prompts.tokens``) build their vocabularies from it."""
from __future__ import annotations


def bytes_to_unicode() -> dict[int, str]:
    # CLIP's byte-level alphabet: printable bytes map to themselves, the rest to code points from 256 up.
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(bs, cs)}
