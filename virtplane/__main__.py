from virtplane.cli import main

main()
