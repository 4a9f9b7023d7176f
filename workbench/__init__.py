"""Brand Workbench: dataset -> LoRA -> prompts -> INT8 SDXL -> gates -> metrics -> approval -> export."""
__version__ = "0.1.0"
