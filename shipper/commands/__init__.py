"""The verbs. Each is `cmd_<verb>(args, lifecycle) -> exit code`; cli.py maps names to them."""
