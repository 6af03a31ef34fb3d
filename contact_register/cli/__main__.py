"""``python -m contact_register.cli``: the same as the ``contact-register`` command."""

import sys

from contact_register.cli import main

sys.exit(main())
