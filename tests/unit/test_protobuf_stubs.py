""".ci/protobuf_stubs.py: the stubs mypy reads for the generated protobuf modules."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    path = ROOT / ".ci" / "protobuf_stubs.py"
    spec = importlib.util.spec_from_file_location("protobuf_stubs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grpc_stub_types_every_method_of_the_service():
    text = _tool().grpc_stub("flyteidl.service.signal_pb2")
    ast.parse(text)  # valid Python stub syntax
    assert "import flyteidl.admin.signal_pb2 as _flyteidl_admin_signal_pb2" in text
    assert (
        "    SetSignal: grpc.UnaryUnaryMultiCallable[_flyteidl_admin_signal_pb2.SignalSetRequest, "
        "_flyteidl_admin_signal_pb2.SignalSetResponse]"
    ) in text
    assert "class SignalServiceServicer:" in text
    assert "def add_SignalServiceServicer_to_server(" in text


def test_messages_of_other_files_are_imported():
    text = _tool().grpc_stub("flyteidl.service.admin_pb2")
    assert "import flyteidl.admin.task_pb2 as _flyteidl_admin_task_pb2" in text
    create = "CreateTask: grpc.UnaryUnaryMultiCallable[_flyteidl_admin_task_pb2.TaskCreateRequest"
    assert create in text


def test_enum_classes_get_a_typed_value():
    source = (
        "class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):\n"
        "    __slots__ = []\n"
        "    class Inner(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):\n"
        "        __slots__ = []\n"
    )
    lines = _tool().message_stub(source).splitlines()
    assert lines[1:3] == ["    @classmethod", "    def Value(cls, name: str) -> Phase: ..."]
    assert lines[5:7] == ["        @classmethod", "        def Value(cls, name: str) -> Inner: ..."]
