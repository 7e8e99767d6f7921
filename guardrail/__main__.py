"""``python -m guardrail`` behaves exactly like the ``guardrail`` command."""

import sys

from guardrail.cli import main

sys.exit(main())
