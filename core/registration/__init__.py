"""Registration: tasks, workflows, launch plans, named entities and description entities."""
