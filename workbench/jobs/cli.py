"""`workbench jobs list|show|stop|selftest|workers`: the job queue from the command line."""
from __future__ import annotations

import typer

app = typer.Typer(help="Background jobs: list, inspect, stop.", no_args_is_help=True)


def _progress(job) -> str:
    if job.progress_total:
        return f"{job.progress_step}/{job.progress_total}"
    return str(job.progress_step or "")


@app.command("list")
def list_cmd(
    kind: str = typer.Option(None, help="Only jobs of this kind."),
    status: str = typer.Option(None, help="queued, running, done, failed or stopped."),
    limit: int = typer.Option(30, help="Newest N jobs."),
) -> None:
    """List jobs, newest first."""
    from workbench.jobs import list_jobs

    jobs = list_jobs(kind=kind, status=status, limit=limit)
    if not jobs:
        typer.echo("no jobs yet")
        return
    typer.echo(f"{'id':>5}  {'kind':<14}{'status':<9}{'progress':<11}{'created':<20}title")
    for j in jobs:
        typer.echo(f"{j.id:>5}  {j.kind:<14}{j.status:<9}{_progress(j):<11}{j.created_at:%Y-%m-%d %H:%M:%S} {j.title}")


@app.command()
def show(job_id: int, lines: int = typer.Option(20, help="Lines of the log to show.")) -> None:
    """Show one job: status, progress, metrics and the tail of its log."""
    from workbench.jobs import JobError, get_job, log_tail

    try:
        job = get_job(job_id)
    except JobError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"job {job.id}: {job.kind} '{job.title}' — {job.status}")
    typer.echo(f"progress: {_progress(job)}  {job.message}")
    if job.metrics:
        typer.echo("metrics:  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in job.metrics.items()))
    typer.echo(f"pid: {job.pid}  host: {job.host}  worker: {job.worker_id or '-'}  by: {job.created_by or '-'}"
               + ("  (requires a GPU)" if job.requires_gpu else ""))
    typer.echo(f"created {job.created_at}, started {job.started_at}, finished {job.finished_at}")
    typer.echo(f"log: {job.log_path}")
    tail = log_tail(job, lines)
    if tail:
        typer.echo("--- log tail ---\n" + tail)


@app.command()
def stop(
    job_id: int,
    wait: bool = typer.Option(True, help="Wait until the job has stopped."),
    timeout: float = typer.Option(120.0, help="Seconds to wait."),
) -> None:
    """Stop a job: it checks a flag, then gets SIGTERM, then SIGKILL after the grace period."""
    from workbench.jobs import JobError, request_stop, wait_for

    try:
        job = request_stop(job_id)
        typer.echo(f"job {job_id}: {job.message or job.status}")
        if wait and job.status == "running":
            job = wait_for(job_id, timeout=timeout)
            typer.echo(f"job {job_id}: {job.status}")
    except JobError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def selftest(steps: int = 5, delay: float = 0.2, timeout: float = 60.0) -> None:
    """Enqueue a small job and watch it finish: checks the queue and a worker end to end."""
    from workbench.jobs import enqueue, wait_for, worker_alive

    alive = worker_alive()
    job_id = enqueue("selftest", {"steps": steps, "delay": delay}, title="selftest")  # starts a consumer if none is
    if not alive and worker_alive():
        typer.echo("started a background worker")
    job = wait_for(job_id, timeout=timeout)
    typer.echo(f"job {job_id}: {job.status} ({job.message})")
    if job.status != "done":
        raise typer.Exit(1)


@app.command()
def workers(all_: bool = typer.Option(False, "--all", help="Also consumers that stopped.")) -> None:
    """Job consumers: host, pid, GPU, status and their last heartbeat (a silent one is marked lost by the others)."""
    from workbench.db import utcnow
    from workbench.jobs.heartbeat import list_workers

    rows = list_workers(include_stopped=all_)
    if not rows:
        typer.echo("no workers" + ("" if all_ else " running (--all shows stopped ones)"))
        return
    typer.echo(f"{'id':>5}  {'host':<24}{'pid':>8}  {'gpu':<5}{'status':<9}{'last seen':<12}note")
    for w in rows:
        ago = f"{(utcnow() - w.last_seen).total_seconds():.0f} s ago"
        typer.echo(f"{w.id:>5}  {w.host:<24}{w.pid:>8}  {'yes' if w.gpu else 'no':<5}{w.status:<9}{ago:<12}{w.reason}")
