"""A short progress log from a Dagster run's console output, for `make demo`.

Dagster's console lines carry the date, logger, level, job, run id and step before the message;
the demo's reader needs the time and the message (each sync's message names its table). DEBUG
events (a step's worker starting) are left to the UI, and so is dbt's line per model and test
(its closing `Done. PASS=… ERROR=…` line stays). Each sync's structured summary line is told in
words (`demo_shop.orders: read 500, inserted 500, cursor …`). Other lines that are not log lines (a
traceback, a warning, a failing dbt test) pass through unchanged, so a failure is shown whole.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator

_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d (?P<time>\d\d:\d\d:\d\d) [+-]\d{4} - dagster - (?P<level>[A-Z]+) - "
    r"(?:(?P<job>[\w.-]+) - [0-9a-f-]{36} - (?:(?P<step>[\w.-]+) - )?)?(?P<message>.*)$"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# dbt's chatter on a build that goes well; failures and errors are other lines and stay.
_DBT_CHATTER = re.compile(
    r"^(\d+ of \d+ (START|OK|PASS)\b|Running with dbt=|Registered adapter:|Unable to do partial"
    r" parsing|Found \d+ models?|Concurrency: |Finished running |Completed successfully$|\s*$)"
)
_DAGSTER_DBT_CHATTER = ("A dbt subsetted execution is not", "Copying `")
_SYNC_LINE = re.compile(r"^stream (?P<stream>\S+) synced: (?P<fields>.*)$")


def shorten(lines: Iterable[str]) -> Iterator[str]:
    """Yield log lines as `HH:MM:SS  message` (with the level above INFO), DEBUG ones not at all,
    and other lines as they are."""
    for line in lines:
        text = _ANSI.sub("", line.rstrip("\n"))
        match = _LOG_LINE.match(text)
        if match is None:
            if not _DBT_CHATTER.match(text):
                yield text
            continue
        if match["level"] == "DEBUG" or match["message"].startswith(_DAGSTER_DBT_CHATTER):
            continue
        level = "" if match["level"] == "INFO" else f"{match['level']}: "
        yield f"  {match['time']}  {level}{_in_words(match['message'])}"


def _in_words(message: str) -> str:
    """A sync's `key=value` summary line as a sentence; any other message as it is."""
    sync = _SYNC_LINE.match(message)
    if sync is None:
        return message
    fields = dict(p.partition("=")[::2] for p in shlex.split(sync["fields"]))
    words = [f"read {fields.get('rows_read', '?')}, inserted {fields.get('rows_inserted', '?')}"]
    words += [
        f"{verb} {fields[key]}"
        for verb, key in (("updated", "rows_updated"), ("deleted", "rows_deleted"))
        if fields.get(key, "0") != "0"
    ]
    if fields.get("cursor_after"):
        words.append(f"cursor {fields['cursor_after']}")
    return f"{sync['stream']}: {', '.join(words)}"


def run(command: list[str]) -> int:
    """Run `command`, printing its output (stdout and stderr) shortened; return its status."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as child:
        assert child.stdout is not None
        for line in shorten(child.stdout):
            print(line, flush=True)
    return child.returncode


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
