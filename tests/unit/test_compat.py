"""The compatibility layer's guards: moto version, targets that moved, clean revert."""

from __future__ import annotations

from types import SimpleNamespace

import moto
import pytest
from typer.testing import CliRunner

from bridge.cli.main import app
from bridge.local_stack import LocalStack, compat
from bridge.local_stack.compat import CompatError, Patch, Replacement, expect, version
from bridge.local_stack.compat.version import check_moto_version


@pytest.fixture(autouse=True)
def _reverted() -> None:
    compat.revert()
    yield
    compat.revert()


def test_the_tested_range_is_the_pyproject_pin() -> None:
    assert "5.2.5" in str(version.tested_moto_range())
    assert check_moto_version() == moto.__version__


def test_a_moto_outside_the_range_is_refused_naming_both_versions() -> None:
    with pytest.raises(CompatError) as info:
        check_moto_version("5.1.0")
    message = str(info.value)
    assert "5.1.0" in message and "5.2.5" in message and "\n" not in message


def test_local_up_refuses_an_untested_moto_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    result = CliRunner().invoke(app, ["local", "up", "--state-file", str(tmp_path / "s.json")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "9.9.9" in lines[0] and "5.2.5" in lines[0]
    assert compat.applied() == []
    with pytest.raises(CompatError):
        LocalStack().start()


def test_a_patch_whose_target_moved_fails_loudly_with_its_name() -> None:
    def build() -> list[Replacement]:
        expect(SimpleNamespace(), "gone_in_new_moto")
        return []

    with pytest.raises(CompatError, match="'moved-target'"):
        compat.apply([Patch("moved-target", "x", build)])
    assert compat.applied() == []


def test_patches_are_all_checked_before_any_is_applied() -> None:
    owner = SimpleNamespace(value="original")
    good = Patch("good", "x", lambda: [Replacement(owner, "value", "patched")])
    bad = Patch("bad", "x", lambda: [Replacement(owner, "missing", "patched")])
    with pytest.raises(CompatError, match="'bad'"):
        compat.apply([good, bad])
    assert owner.value == "original"


def test_two_patches_replacing_one_attribute_are_refused_naming_both() -> None:
    """Patches are built against moto as shipped: the second would silently drop the first."""
    owner = SimpleNamespace(value="original")
    first = Patch("first", "x", lambda: [Replacement(owner, "value", "one")])
    second = Patch("second", "x", lambda: [Replacement(owner, "value", "two")])
    with pytest.raises(CompatError, match="'first' and 'second' both replace"):
        compat.apply([first, second])
    assert owner.value == "original"
    assert compat.applied() == []


def test_the_shipped_patches_replace_distinct_attributes() -> None:
    try:
        assert len(compat.apply()) == len(compat.registry())
    finally:
        compat.revert()


def test_revert_restores_moto_as_shipped() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    before = (
        StepFunctionsParserBackend.__dict__["start_execution"],
        StepFunctionResponse.__dict__["send_task_failure"],
        AmazonStateLanguageParser.__dict__["parse"],
    )
    names = compat.apply()
    assert {"sfn-unnamed-execution", "sfn-closed-token", "sfn-send-task-failure-cause"} <= set(
        names
    )
    assert StepFunctionsParserBackend.__dict__["start_execution"] is not before[0]
    compat.revert()
    after = (
        StepFunctionsParserBackend.__dict__["start_execution"],
        StepFunctionResponse.__dict__["send_task_failure"],
        AmazonStateLanguageParser.__dict__["parse"],
    )
    assert after == before
    assert isinstance(after[2], staticmethod)


def test_every_patch_documents_the_aws_behaviour() -> None:
    for patch in compat.registry():
        assert patch.name and patch.aws_behaviour
        doc = (patch.build.__doc__ or "").lower()
        assert "moto" in doc, f"{patch.name}: say how moto as shipped differs"
        assert "reference" in doc or "guide" in doc, f"{patch.name}: cite the AWS documentation"


def test_an_added_api_is_removed_on_revert_after_its_cleanup() -> None:
    class Backend:
        pass

    stopped: list[str] = []
    patch = Patch(
        "adds",
        "x",
        lambda: [Replacement(Backend, "new_api", lambda self: 1, adds=True)],
        cleanup=lambda: stopped.append("threads"),
    )
    compat.apply([patch])
    assert Backend().new_api() == 1  # type: ignore[attr-defined]
    compat.revert()
    assert not hasattr(Backend, "new_api")
    assert stopped == ["threads"]


def test_adding_an_api_moto_already_has_fails_for_review() -> None:
    class Backend:
        def existing(self) -> None: ...

    with pytest.raises(CompatError, match=r"moto now has Backend\.existing"):
        compat.apply([Patch("adds", "x", lambda: [Replacement(Backend, "existing", 1, adds=True)])])


def test_the_interpreters_json_copy_is_a_deep_copy() -> None:
    import datetime

    from bridge.local_stack.compat.sfn_copies import json_copy

    class Opaque:
        def __init__(self) -> None:
            self.items = [1]

    when = datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)
    value = {"a": [{"b": 1}, "s", 2.5, None, True], "when": when, "opaque": Opaque()}
    copied = json_copy(value)
    assert copied == {**value, "opaque": copied["opaque"]}
    copied["a"][0]["b"] = 2
    copied["a"].append("more")
    copied["opaque"].items.append(2)
    assert value["a"] == [{"b": 1}, "s", 2.5, None, True]  # nothing shared
    assert value["opaque"].items == [1]  # copied by copy.deepcopy
    assert copied["when"] is when  # immutable: the value itself, as deepcopy does for scalars


def test_plain_field_paths_answer_as_moto_does() -> None:
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError, extract_json

    from bridge.local_stack.compat.sfn_paths import fast_extract

    fast = fast_extract(extract_json)
    data = {"a": {"b": [1, 2], "c": None, "d": {"e": "x"}}, "f": [{"g": 1}], "h_2": 0}
    for path in ("$.a", "$.a.b", "$.a.c", "$.a.d.e", "$.h_2", "$.f", "$.f[0].g", "$.a.b[1]"):
        assert fast(path, data) == extract_json(path, data), path
    for missing in ("$.x", "$.a.x", "$.a.b.c", "$.f.g.h"):
        with pytest.raises(NoSuchJsonPathError):
            extract_json(missing, data)
        with pytest.raises(NoSuchJsonPathError):
            fast(missing, data)
