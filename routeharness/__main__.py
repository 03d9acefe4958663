from routeharness.cli import main

main()
