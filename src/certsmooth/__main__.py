from certsmooth.cli import main

raise SystemExit(main())
