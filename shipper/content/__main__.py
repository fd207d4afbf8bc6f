"""`python -m shipper.content ...`"""

from .cli import main

raise SystemExit(main())
