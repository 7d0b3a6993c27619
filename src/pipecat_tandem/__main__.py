#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``python -m pipecat_tandem`` is the ``tandem`` command."""

import sys

from pipecat_tandem.cli import main

if __name__ == "__main__":
    sys.exit(main())
