"""Training: SDXL LoRA and DreamBooth-LoRA runs as jobs (``accelerate launch -m workbench.train``).

    workbench.train.config   TrainConfig, diffusers-style flag parsing
    workbench.train.script   the training script (config -> main(), numbered steps)
    workbench.train.data     data sources -> images + captions, DreamBooth class images
    workbench.train.runs     run folders, metrics, starting / stopping / resuming runs, sweeps
    workbench.train.tables   `loras` and `checkpoints` tables
    workbench.train.job      the "train_lora" job kind
    workbench.train.cli      `workbench train ...` and `workbench runs ...`
"""
