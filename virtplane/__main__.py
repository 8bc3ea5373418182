from virtplane.cli import run

run()
