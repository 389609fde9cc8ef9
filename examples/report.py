#!/usr/bin/python3
"""An exec handler in Python: sums the numbers in the job's args and prints a
one-line report. Bad input is a failure (exit 1) whose stderr becomes the
job's error_message, so the job follows Sidekiq's retry rules.

    [job "ReportJob"]
    exec = /usr/bin/python3 examples/report.py
"""
import json
import os
import sys


def main():
    job = json.load(sys.stdin)
    args = job.get("args", [])
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if len(numbers) != len(args):
        print(f"ReportJob wants numbers, got {args!r}", file=sys.stderr)
        return 1
    print(f"report {os.environ.get('FORQ_JID')}: {len(numbers)} values, "
          f"sum {sum(numbers)}, attempt {int(os.environ.get('FORQ_RETRY_COUNT', '0')) + 1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
