"""`python -m service.cli …` is the `ganserve` command."""

from service.cli.main import main

raise SystemExit(main())
