"""The check helper the SDK scripts share: exits non-zero on the first failed check."""
import sys

count = 0


def check(condition, what):
    global count
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    count += 1
