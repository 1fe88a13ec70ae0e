"""The `tfrl` command: a thin layer over the Python API, one module per subcommand."""
