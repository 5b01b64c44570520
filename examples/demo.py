"""A small program to try `execalign trace` on."""

import sys


def running_max(values):
    best = None
    out = []
    for v in values:
        if best is None or v > best:
            best = v
        out.append(best)
    return out


def main(argv):
    numbers = [int(a) for a in argv] or [3, 1, 4, 1, 5]
    peaks = running_max(numbers)
    print("running max:", peaks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
