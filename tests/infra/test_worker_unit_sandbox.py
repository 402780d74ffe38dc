"""The worker's systemd unit gives it what job containment needs, and nothing more.

Static: these machines have no systemd. What the unit grants is checked against what the code
asks for (consumers.sandbox, consumers.reaper), so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from consumers.containment import CgroupTree
from consumers.sandbox import RUN_AS_CAPABILITIES
from tests.support.terraform import unit_directives

UNIT = Path(__file__).resolve().parents[2] / "consumers/systemd/callback-bridge-worker.service"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictRealtime": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
}


def test_the_worker_gets_exactly_the_capabilities_run_as_needs() -> None:
    unit = unit_directives(UNIT)
    wanted = set(RUN_AS_CAPABILITIES)
    assert wanted == {"CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
    assert set(unit["CapabilityBoundingSet"].split()) == wanted
    # A non-root User= gets capabilities only through the ambient set.
    assert set(unit["AmbientCapabilities"].split()) == wanted
    assert unit["User"] != "root" and unit["Group"] != "root"


def test_the_worker_keeps_its_hardening() -> None:
    unit = unit_directives(UNIT)
    for key, value in HARDENING.items():
        assert unit.get(key) == value, f"{key}={unit.get(key)!r}, expected {value!r}"


def test_the_worker_gets_a_cgroup_subtree_it_can_write() -> None:
    unit = unit_directives(UNIT)
    assert unit["Delegate"] == "yes"
    # ProtectControlGroups=yes would mount /sys/fs/cgroup read-only; ProtectKernelTunables
    # leaves it writable (systemd's namespace table keeps /sys/fs/cgroup read-write).
    assert unit.get("ProtectControlGroups", "no") == "no"
    # SIGTERM to the worker only: it stops its jobs (and their cgroups) itself.
    assert unit["KillMode"] == "mixed"


def test_the_code_finds_the_cgroup_the_unit_delegates(tmp_path: Path) -> None:
    """Under this unit, /proc/self/cgroup names the service's cgroup (or, after a restart in
    place, the worker's leaf in it): CgroupTree.detect takes the service's as its root."""
    service = "system.slice/callback-bridge-worker.service"
    root = tmp_path / "cgroup-fs" / service
    root.mkdir(parents=True)
    for name in ("cgroup.kill", "cgroup.procs"):
        (root / name).write_text("")
    for own in (service, f"{service}/worker"):
        (tmp_path / "self-cgroup").write_text(f"0::/{own}\n")
        tree = CgroupTree.detect(
            {"INVOCATION_ID": "0123"}, tmp_path / "self-cgroup", tmp_path / "cgroup-fs"
        )
        assert tree is not None and tree.root == root


def test_the_unit_comments_say_why() -> None:
    text = UNIT.read_text(encoding="utf-8")
    for needed in ("CAP_SETUID", "CAP_KILL", "BRIDGE_RUN_AS", "Delegate=yes", "cgroup.kill"):
        assert needed in text.split("[Unit]")[0], f"the unit's header comment lacks {needed}"
