from stackctl.cli import run

run()
