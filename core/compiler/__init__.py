"""The workflow compiler: a pure, two-phase functional core (flytepropeller's compiler, in Python).

1. ``requirements(template, sub_workflows)`` lists the task and launch-plan ids to load.
2. ``compile_workflow(template, sub_workflows, tasks, launch_plans)`` returns the
   ``CompiledWorkflowClosure`` flyteadmin stores, or raises ``CompileErrors`` with every error.

``compile_task`` is CreateTask's compile step; ``castable`` and ``literal_type_of`` are the type
rules that launch-plan and execution validation share with the compiler.
"""

from flyteadmin.core.compiler._graph import END_NODE_ID, START_NODE_ID, LaunchPlanInterface
from flyteadmin.core.compiler.errors import CompileError, CompileErrors, ErrorCode
from flyteadmin.core.compiler.requirements import IdKey, Requirements, id_key, requirements
from flyteadmin.core.compiler.tasks import compile_task
from flyteadmin.core.compiler.text import literal_type_text, proto_text
from flyteadmin.core.compiler.types import castable, is_optional, literal_type_of
from flyteadmin.core.compiler.workflow import compile_workflow, launch_plan_interface

__all__ = [
    "END_NODE_ID",
    "START_NODE_ID",
    "CompileError",
    "CompileErrors",
    "ErrorCode",
    "IdKey",
    "LaunchPlanInterface",
    "Requirements",
    "castable",
    "compile_task",
    "compile_workflow",
    "id_key",
    "is_optional",
    "launch_plan_interface",
    "literal_type_of",
    "literal_type_text",
    "proto_text",
    "requirements",
]
