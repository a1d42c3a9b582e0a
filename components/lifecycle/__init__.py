"""Package lifecycle tooling devpi lacks: promote, remove, prune, du, status, backup and restore.

Each job lives in its own module with its pure logic (planning, comparing, rendering) apart from the
I/O (devpi API calls through ``components.devpi.client.DevpiClient``); ``cli.py`` wires them to argparse.
"""
