"""A tiny code location for the run-queue test: a job that records when it runs."""

import json
import os
import time

from dagster import Definitions, job, op


@op
def hold_a_slot():
    path = os.environ["PROBE_LOG"]
    start = time.time()
    time.sleep(float(os.environ.get("PROBE_SECONDS", "2")))
    with open(path, "a") as fh:
        fh.write(json.dumps({"start": start, "end": time.time()}) + "\n")


@job(tags={"register/system-netvisor": "true"})
def netvisor_probe():
    hold_a_slot()


defs = Definitions(jobs=[netvisor_probe])
