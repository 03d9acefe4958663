from routeharness.cli._app import main

main()
