"""``sweep submit JOB --address http://HEAD:8265 [--out URI] [--wait]`` — a sweep as a Ray Job.

The job file's folder is uploaded as the job's ``working_dir`` (data files named relatively travel
with it) and the head node runs ``python -m sweep.cli run JOB --backend ray --out OUT`` there, which
fans the tasks over every node. Prints the job id on stdout; ``--wait`` follows the job's logs and
exits 0 if it succeeded, 1 if it failed or was stopped. ``--status ID`` / ``--stop ID`` inspect or
stop a job. Exit 2: bad input, an unreachable dashboard or a refused token (one ``error:`` line);
exit 3: the cluster failed a request.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sweep.errors import InputError, Problem


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", nargs="?", help="sweep definition (jobs/*.toml); its folder is uploaded with it")
    p.add_argument("--address", "-a", metavar="URL",
                   help="the Ray dashboard (Jobs API) URL, e.g. http://127.0.0.1:8265 after `ray dashboard "
                        "cluster.yaml`; default $RAY_API_SERVER_ADDRESS, else an http(s) $RAY_ADDRESS")
    p.add_argument("--out", "-o", metavar="URI",
                   help="where the head node writes the dataset: s3://…, gs://… or an absolute path there; "
                        "default the job's sweep.out, else $HOME/sweep-results/<sweep name> on the head node")
    p.add_argument("--fresh", action="store_true", help="start over: drop earlier results in the output")
    p.add_argument("--wait", "-w", action="store_true",
                   help="follow the job's logs until it ends; exit 0 if it succeeded, 1 if not")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--status", metavar="ID", help="print the status of job ID")
    what.add_argument("--stop", metavar="ID", help="stop job ID (with --wait: until it has ended)")


def run(args: argparse.Namespace) -> int:
    from sweep.engine.cluster import OUTCOME_EXIT, ClusterError, Jobs, dashboard_address, plan_submission

    job_id = args.status or args.stop
    if job_id and args.job:
        raise InputError([Problem(args.job, "give a job file, or --status/--stop ID, not both")])
    if not job_id and not args.job:
        raise InputError([Problem("sweep submit", "give a job file to submit, or --status ID / --stop ID")])
    # everything local first: a bad job or address is reported before any network call
    sub = plan_submission(args.job, args.out, fresh=args.fresh) if args.job else None
    address = dashboard_address(args.address)
    try:
        jobs = Jobs(address)
        # Ray's SDK logs each request at INFO ("Uploading package …", "WebSocket closed …"); this
        # command says what matters itself. (After the import: importing ray sets their levels.)
        for name in [n for n in logging.root.manager.loggerDict if n == "ray" or n.startswith("ray.")]:
            logging.getLogger(name).setLevel(logging.WARNING)
        if args.status:
            return _print_status(jobs, args.status)
        if args.stop:
            stopping = jobs.stop(args.stop)
            print(f"{args.stop}: {'stop requested' if stopping else 'had already ended'}", file=sys.stderr)
            if args.wait:
                print(f"{args.stop}: {jobs.wait(args.stop)}")
            return 0
        if sub is None:
            return 2  # unreachable: either a job file or an ID was required above
        print(f"uploading {sub.folder} (the job's folder) to {address}", file=sys.stderr, flush=True)
        job_id = jobs.submit(sub)
        print(job_id, flush=True)
        print(f"submitted sweep {sub.name} as Ray job {job_id} to {address}; results: {sub.out} (on the head node "
              f"unless a URI)", file=sys.stderr)
        if not args.wait:
            print(f"follow it: sweep submit --status {job_id} --address {address}   "
                  f"(or `ray job logs -f {job_id}`)", file=sys.stderr)
            return 0
        try:
            status = jobs.follow(job_id, sys.stdout)
        except KeyboardInterrupt:
            print(f"\nstopped following; job {job_id} keeps running (sweep submit --stop {job_id} --address "
                  f"{address} stops it)", file=sys.stderr)
            return 130
        message = (jobs.info(job_id).message or "").strip().splitlines()
        # Ray's message repeats the log tail after its first clause; the logs were just shown
        why = f": {message[0].split(', last available logs')[0]}" if status != "SUCCEEDED" and message else ""
        print(f"job {job_id}: {status}{why}", file=sys.stderr)
        return OUTCOME_EXIT[status]
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3


def _print_status(jobs, job_id: str) -> int:
    info = jobs.info(job_id)
    status = str(info.status.value) if hasattr(info.status, "value") else str(info.status)
    print(f"{job_id}: {status}")
    if info.message:
        print(f"  message: {info.message.strip()}")
    print(f"  entrypoint: {info.entrypoint}")
    if info.start_time:
        end = info.end_time or 0
        took = f", {(end - info.start_time) / 1000:.1f}s" if end else ""
        print(f"  started: {_ms(info.start_time)}{took}")
    return 0


def _ms(t_ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t_ms / 1000))
