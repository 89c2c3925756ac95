"""Guide for a detection without its own guide module: the steps every network finding shares."""

from __future__ import annotations

from bothunt.guides import Guide
from bothunt.schema import Finding

GENERIC = Guide(
    key="generic",
    summary="{title} ({first_seen} to {last_seen}).",
    check_first=(
        "Read the explanation and the evidence: which internal host ({who}) and which remote side "
        "({destination}) are involved, and whether the host has other findings (see the host view).",
        "Find the process on {who} responsible for the traffic ({process}).",
    ),
    false_positives=(
        "The explanation names what would make the finding benign; check that first and allow-list what is "
        "sanctioned.",
    ),
    collect=("The host's network and process telemetry for {first_seen} to {last_seen} (pivot queries below).",),
    contain=("Isolate {who} if the process is unknown; block {destination} if it is not a sanctioned service.",),
    escalate=("When the process is unknown or {who} has findings of other detections.",),
)


def guide(f: Finding) -> Guide:
    return GENERIC


def values(f: Finding) -> dict[str, str]:
    return {}
