"""Entry point: ``accelerate launch -m workbench.train --flags...`` (or ``python -m workbench.train`` for one process).

Exit codes: 0 done or stopped on request, 2 bad options (the message names the option), 3 the loss diverged.
"""
from __future__ import annotations

import sys

from workbench.train.config import ConfigError, parse_args


def run(argv: list[str]) -> int:
    try:
        cfg = parse_args(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    from workbench.train.script import TrainingDiverged, main

    try:
        main(cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
