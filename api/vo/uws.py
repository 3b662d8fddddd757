"""UWS 1.1 documents (job, job list) for async TAP jobs, built with ElementTree.

pyvo and TOPCAT read these documents; no maintained Python library writes
them server-side, so they are assembled here from the schema's elements.
An async job's phase comes from the platform job running it once it runs
(:data:`PHASES`); before that, from the TAP job's own row.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from api.models import Job, TapJob

UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("uws", UWS)
ET.register_namespace("xlink", XLINK)
ET.register_namespace("xsi", XSI)

#: platform job state → UWS phase
PHASES = {"queued": "QUEUED", "running": "EXECUTING", "succeeded": "COMPLETED",
          "failed": "ERROR", "cancelled": "ABORTED"}
FINAL = ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")


def phase_of(tap: TapJob, job: Job | None) -> str:
    return PHASES.get(job.state, "ERROR") if job is not None else tap.phase


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if moment else None


def _add(parent: ET.Element, name: str, text: str | None, nil: bool = False) -> ET.Element:
    element = ET.SubElement(parent, f"{{{UWS}}}{name}")
    if text is None and nil:
        element.set(f"{{{XSI}}}nil", "true")
    elif text is not None:
        element.text = text
    return element


def job_document(tap: TapJob, job: Job | None, owner: str, base_url: str,
                 error: str | None) -> bytes:
    """The ``uws:job`` of one job; ``base_url`` is the job's own URL."""
    phase = phase_of(tap, job)
    root = ET.Element(f"{{{UWS}}}job", {"version": "1.1"})
    _add(root, "jobId", tap.id)
    _add(root, "runId", tap.run_id or None)
    _add(root, "ownerId", owner)
    _add(root, "phase", phase)
    _add(root, "quote", None, nil=True)
    _add(root, "creationTime", _when(tap.created_at))
    _add(root, "startTime", _when(job.started_at if job else None), nil=True)
    _add(root, "endTime", _when(job.finished_at if job else None), nil=True)
    _add(root, "executionDuration", str(tap.execution_duration_s))
    _add(root, "destruction", _when(tap.destruction_at))
    parameters = _add(root, "parameters", None)
    for name, value in (("LANG", "ADQL"), ("QUERY", tap.query),
                        ("FORMAT", tap.params.get("format")),
                        ("MAXREC", str(tap.params.get("maxrec", "")))):
        item = ET.SubElement(parameters, f"{{{UWS}}}parameter", {"id": name})
        item.text = value
    results = _add(root, "results", None)
    if phase == "COMPLETED":
        ET.SubElement(results, f"{{{UWS}}}result", {
            "id": "result", f"{{{XLINK}}}type": "simple",
            f"{{{XLINK}}}href": f"{base_url}/results/result"})
    if phase == "ERROR":
        summary = _add(root, "errorSummary", None)
        summary.set("type", "fatal")
        summary.set("hasDetail", "true")
        _add(summary, "message", error or "the job failed")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def job_list(rows: list[tuple[TapJob, Job | None]], owner: str, base_url: str) -> bytes:
    """The ``uws:jobs`` list: each job's id, phase and link."""
    root = ET.Element(f"{{{UWS}}}jobs", {"version": "1.1"})
    for tap, job in rows:
        ref = ET.SubElement(root, f"{{{UWS}}}jobref", {
            "id": tap.id, f"{{{XLINK}}}type": "simple",
            f"{{{XLINK}}}href": f"{base_url}/{tap.id}"})
        _add(ref, "phase", phase_of(tap, job))
        _add(ref, "runId", tap.run_id or None)
        _add(ref, "ownerId", owner)
        _add(ref, "creationTime", _when(tap.created_at))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
