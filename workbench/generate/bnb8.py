"""8-bit weights with bitsandbytes (LLM.int8 ``Linear8bitLt``): the second quantization backend, CUDA only.

Every ``nn.Linear`` of a module is swapped for ``bnb.nn.Linear8bitLt`` holding the same weights; the int8
quantization happens when the module moves to the GPU. The swapped layers keep the pipeline's dtype (bf16 stays
bf16, fp32 stays fp32: ``bnb8_dtype``), so only the Linear weights change, not the precision of everything around
them. Convolutions stay in the pipeline's dtype (bitsandbytes has no 8-bit Conv2d), so this saves less than quanto's
INT8, which covers Conv2d too. LoRAs must be fused before the swap.

    swap_linear_to_bnb8(pipe.unet, dtype=pipe.unet.dtype); pipe.to("cuda")
"""
from __future__ import annotations

import torch
from torch import nn


def bnb8_dtype(layer_dtype: torch.dtype, pipeline_dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype a swapped layer's bias and (pre-quantization) weight are kept in: the pipeline's, else the layer's
    own. Never a forced fp16: a bf16 or fp32 pipeline would get fp16 biases (bf16 values above 65504 become inf)
    and mixed dtypes between the swapped layers and the rest."""
    return pipeline_dtype or layer_dtype


def swap_linear_to_bnb8(module: nn.Module, threshold: float = 6.0, dtype: torch.dtype | None = None) -> int:
    """Replace every nn.Linear under ``module`` (in place) with an 8-bit bitsandbytes layer. Returns how many.
    ``dtype``: the pipeline's dtype (default: each layer's own). The module should be on the CPU;
    ``.to("cuda")`` afterwards quantizes the weights."""
    import bitsandbytes as bnb

    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear) and not isinstance(child, bnb.nn.Linear8bitLt):
            kept = bnb8_dtype(child.weight.dtype, dtype)
            new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=child.bias is not None,
                                      has_fp16_weights=False, threshold=threshold, device="meta")
            new.weight = bnb.nn.Int8Params(child.weight.data.detach().to("cpu", kept), requires_grad=False,
                                           has_fp16_weights=False)
            if child.bias is not None:
                new.bias = nn.Parameter(child.bias.data.detach().to("cpu", kept), requires_grad=False)
            setattr(module, name, new)
            count += 1
        else:
            count += swap_linear_to_bnb8(child, threshold, dtype)
    return count
