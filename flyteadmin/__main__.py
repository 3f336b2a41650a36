from flyteadmin.cli import main

main()
