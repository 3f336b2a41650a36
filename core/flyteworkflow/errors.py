"""Build failures are returned to the caller (§5.3), like propeller's CompileErrors."""


class FlyteWorkflowBuildError(ValueError):
    pass
