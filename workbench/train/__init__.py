"""Training: SDXL LoRA and DreamBooth-LoRA runs as jobs (``accelerate launch -m workbench.train``).

    workbench.train.config   TrainConfig, diffusers-style flag parsing
    workbench.train.script   the training script (config -> main(), numbered steps)
    workbench.train.validation  validation images, class images, run card, rank checksums, kohya export
    workbench.train.data     data sources -> images + captions, DreamBooth class images
    workbench.train.runs     metrics, starting / stopping / resuming / continuing runs, sweeps
    workbench.train.folders  a run's folder (workspace/runs/<id> or its output_dir), which output_dir may be used
    workbench.train.estimate peak GPU memory and s/step from the measured table (full-size SDXL only)
    workbench.train.tables   `loras` and `checkpoints` tables
    workbench.train.job      the "train_lora" job kind
    workbench.train.cli      `workbench train ...` and `workbench runs ...`
"""
