"""Executions: create (from a launch plan or a single task), read, list, update, terminate."""
