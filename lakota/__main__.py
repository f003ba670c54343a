"""``python -m lakota``: the command line (see `lakota.cli`)."""

import sys

if __name__ == "__main__":
    try:
        from lakota.cli import main
    except KeyboardInterrupt:  # Ctrl-C while importing: as quiet as afterwards
        sys.exit(130)
    sys.exit(main())
