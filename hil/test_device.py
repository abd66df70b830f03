"""Per target: every sample as the build's reference computes it; per target and gate: the gate on the device."""

from __future__ import annotations

from conftest import Session


def test_every_sample_matches_the_reference(hil: Session, target: str) -> None:
    result = hil.result(target)
    assert result.n_mismatched == 0, result.describe_mismatches()


def test_gate_holds_on_the_device(hil: Session, target: str, gate: str) -> None:
    result = hil.result(target).result
    found = next((g for g in result.gates if g.name == gate), None)
    assert found is not None, f"{target}: the device run did not evaluate gate {gate}"
    assert found.passed, f"{target}: gate failed on the device: {found.describe()}"
