"""Generation: SDXL + LoRAs with INT8 weights, sampling with provenance in every PNG.

``pipeline`` assembles a pipeline (model, VAE, LoRAs, scheduler, dtype, quantization) and caches quantized weights;
``sample`` generates images for a prompt, writes PNGs with A1111 ``parameters`` and a provenance JSON chunk, and records
them in the ``generations`` table (pending review). Heavy imports happen inside the functions.
"""
