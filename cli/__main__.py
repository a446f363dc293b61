from quaton_fab.cli.app import main

main()
