"""The `workbench` command: help, info, jobs."""
import subprocess
import sys

from typer.testing import CliRunner

from workbench import jobs
from workbench.cli import app

runner = CliRunner()


def test_help_lists_the_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("models", "jobs", "worker", "info"):
        assert name in result.output


def test_console_script_is_installed_and_starts():
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "models" in out.stdout


def test_info_shows_workspace_device_and_counts(workspace):
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert str(workspace.resolve()) in result.output
    assert "torch:" in result.output and "device:" in result.output
    assert "training runs 0" in result.output


def test_jobs_list_show_and_stop(workspace):
    assert "no jobs yet" in runner.invoke(app, ["jobs", "list"]).output
    job_id = jobs.enqueue("selftest", {"steps": 3}, title="cli check")
    listing = runner.invoke(app, ["jobs", "list"]).output
    assert "cli check" in listing and "queued" in listing
    shown = runner.invoke(app, ["jobs", "show", str(job_id)])
    assert shown.exit_code == 0 and "selftest" in shown.output and "queued" in shown.output
    stopped = runner.invoke(app, ["jobs", "stop", str(job_id)])
    assert stopped.exit_code == 0 and "stopped before it started" in stopped.output
    assert jobs.get_job(job_id).status == "stopped"


def test_jobs_show_unknown_id_is_a_clear_error(workspace):
    result = runner.invoke(app, ["jobs", "show", "999"])
    assert result.exit_code == 2
    assert "no job with id 999" in result.output
