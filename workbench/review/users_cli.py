"""`workbench users …` (the commands live in workbench/review/cli.py beside `workbench review …`)."""
from workbench.review.cli import users_app as app

__all__ = ["app"]
